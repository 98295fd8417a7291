/*
 * ckpt.h — a run's checkpoint: weights PyTorch can load, and the state an exact resume
 * needs (prefix ck_).
 *
 * ck_save(dir, "last", &run, &err) writes two files:
 *
 *   dir/last.safetensors   every parameter of the store, by its name ("G.0.weight"), in
 *                          its stored shape (a linear weight is [out, in], as PyTorch
 *                          keeps it), with __metadata__ {"format": "pt", "spec": the
 *                          spec's name, "spec_hash": the caller's hash of the spec,
 *                          "data": the caller's record of its data, "vocab": of a
 *                          text corpus's vocabulary} (the last two when given)
 *   dir/last.state         everything else, in the binary format below
 *
 * Each is written as PATH.tmp and renamed over PATH once complete, so a crash or a
 * full disk leaves the previous checkpoint as it was. The state file records a CRC32
 * of the weights it was saved with, so a pair mixed by a crash between the two
 * renames is refused on load rather than resumed from.
 *
 *     const char *names[] = {"opt_D", "opt_G"};
 *     rng *rngs[] = {&p->rng, &p->sample_rng, &data_rng};
 *     ck_run run = {.spec_name = "gan", .spec_hash = hash, .params = &p->params,
 *                   .noptims = 2, .optims = p->optims, .optim_names = names,
 *                   .nrngs = 3, .rngs = rngs, .order = order, .norder = n,
 *                   .cursor = at, .epoch = epoch, .step = step};
 *     if (ck_save(dir, "last", &run, &err)) ...
 *     ...
 *     if (ck_load(dir, "last", &run, &err)) ...   // fills all of it back in
 *
 * Loading checks everything before it changes anything: on an error, the store, the
 * optimizers, the generators and the order are as they were. The store's names and
 * shapes must match the weights file exactly, and the first difference is reported:
 *   "dir/last.safetensors: checkpoint has G.0.weight [256, 100] but the spec makes [128, 100]"
 *   "dir/last.safetensors: checkpoint lacks D.2.bias"
 *   "dir/last.safetensors: checkpoint has extra tensor X"
 * and the optimizers, generators and data order must match the state file:
 *   "dir/last.state: optimizer 'opt_D' was adam in the checkpoint, the spec says sgd"
 *
 * The state file (all integers little-endian):
 *
 *   "AIGCSTAT"  u32 version  u64 L  payload (L bytes)  u32 CRC32 of everything before it
 *
 *   payload: str spec_hash, u32 weights_crc, i64 epoch, i64 step, i64 cursor,
 *            u64 norder, i32 order[norder],
 *            u32 nrngs, per generator: u64 s[4], u32 has_spare, f32 spare,
 *            u32 noptims, per optimizer: str name, u32 kind, i64 step,
 *                u32 ngroups, f64 lr[ngroups], u64 nstate, f32 state[nstate]
 *   (str: u32 length, then the bytes; floats by their bits)
 *
 * weights_crc is the CRC32 of the parameters' floats, in the store's order.
 */
#ifndef AIGC_CKPT_H
#define AIGC_CKPT_H

#include <stdint.h>

#include "aigc/base.h"
#include "aigc/graph.h"
#include "aigc/optim.h"
#include "aigc/rng.h"

enum { CK_VERSION = 1 };

/* What a checkpoint holds. ck_save reads it; ck_load writes into what the pointers
 * point at, and into cursor, epoch and step. */
typedef struct ck_run {
    const char *spec_name;
    const char *spec_hash;      /* ck_load: NULL accepts a checkpoint of any spec */
    const char *data, *vocab;   /* metadata for sampling without the data set, or NULL */
    ag_params *params;          /* allocated */
    int noptims;
    opt_optimizer *optims;      /* noptims, made from the spec */
    const char *const *optim_names; /* the spec's names for them, distinct */
    int nrngs;
    rng *const *rngs;
    int32_t *order;             /* the data order: a permutation of [0, norder) */
    int64_t norder;
    int64_t cursor;             /* the next position in order */
    int epoch;
    int64_t step;
    /* The caller's own record (the training loop's running means, the metrics file's
     * length), saved as bytes and restored into the same buffer; a load requires the
     * same length. */
    void *extra;
    uint64_t extra_len;
} ck_run;

/* Where a checkpoint named on the command line is: a run directory stands for its
 * `last`, and a file may be named with or without its .safetensors or .state ending.
 * Fills dir and name (dir/name.safetensors, dir/name.state); AG_ERR when neither that
 * directory nor dir/name.safetensors nor from itself is there. */
int ck_locate(const char *from, char *dir, size_t dn, char *name, size_t nn);
/* The weights file that `from` names for sampling, evaluation or --init: a run
 * directory's last, a checkpoint with or without its ending (a .state stands for its
 * .safetensors), or a file that is there as it is named (PyTorch's may end otherwise).
 * Returns from itself or buf (n bytes, 4800 hold any). */
const char *ck_weights_path(const char *from, char *buf, size_t n);
/* The weights a spec's own run leaves, runs/NAME/last.safetensors: what sample, eval
 * and eval --quality's classifier read when not told otherwise. Returns buf. */
const char *ck_run_weights(const char *spec_name, char *buf, size_t n);

int ck_save(const char *dir, const char *name, const ck_run *run, ag_error *err);
int ck_load(const char *dir, const char *name, ck_run *run, ag_error *err);

/* The weights alone, from any safetensors file whose names and shapes match the
 * store exactly (one that PyTorch wrote, too): for sampling and evaluation. With
 * seed_ema (--init: a run starting from them), an exponential average the file lacks
 * (ema.MODEL.NAME, the file trained without `ema:`) starts as the weight it averages.
 * spec_name (or NULL) names the spec in a message when the file was saved from another. */
int ck_load_weights(const char *path, ag_params *ps, int seed_ema, const char *spec_name, ag_error *err);

#endif
