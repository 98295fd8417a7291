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
 *     ck_field fields[] = {{"train_sum", CK_F64, nlogs, sums}, {"skipped", CK_I64, 1, &skipped}};
 *     ck_run run = {.spec_name = "gan", .spec_hash = hash, .params = &p->params,
 *                   .noptims = 2, .optims = p->optims, .optim_names = names,
 *                   .nrngs = 3, .rngs = rngs, .order = order, .norder = n,
 *                   .cursor = at, .epoch = epoch, .step = step,
 *                   .fields = fields, .nfields = 2};
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
 * The state file (all numbers little-endian):
 *
 *   "AIGCSTAT"  u32 version (2)  u64 L  payload (L bytes)  u32 CRC32 of everything before it
 *
 *   payload: records to its end, each found by its name, never by its place:
 *     u32 name length, the name (one byte or more, no control byte),
 *     u32 type, u64 count, count values of the type
 *   types: 1 u8, 2 i32, 3 u32, 4 i64, 5 u64, 6 f32, 7 f64 (floats by their bits)
 *
 *   name              type  count      what
 *   step              i64   1          updates done; written first, so it is at byte 40
 *   epoch             i64   1
 *   cursor            i64   1          the next position in order
 *   spec_hash         u8    its length the caller's hash of the spec, as text
 *   weights_crc       u32   1          CRC32 of the parameters' floats, in the store's order
 *   order             i32   norder     the data order
 *   rng.state         u64   4 nrngs    generator k's words at 4k
 *   rng.has_spare     u8    nrngs      0 or 1
 *   rng.spare         f32   nrngs
 *   optim.NAME.kind   u8    its length "sgd", "adam", "adamw": each optimizer by its spec name
 *   optim.NAME.step   i64   1
 *   optim.NAME.lr     f64   ngroups    each parameter group's current learning rate
 *   optim.NAME.state  f32   nstate     the moments, as opt_state_floats counts them
 *   run.NAME          any   any        the caller's fields (ck_field), under their names
 *
 * Why not safetensors, as the weights are: the state is not tensors. It holds 64-bit
 * words and counts, f64 rates and text, which the safetensors reader (F32 only) does
 * not take, and it needs a frame of its own: a magic no weights file has, a version
 * and a CRC over the whole file. A list of named records reads in a few bounded loops.
 *
 * A record this build does not know is skipped: a later build may add records that an
 * older one can do without, and raises the version when one may not be ignored. A
 * record the build needs and does not find, or finds twice, or of another type, is
 * refused with its name:
 *   "dir/last.state: checkpoint lacks 'run.skipped'"
 *   "dir/last.state: 'epoch' holds f64[1] in the checkpoint, this build reads i64[1]"
 * A file of another version is refused before its payload is read:
 *   "dir/last.state: a checkpoint state of format version 1, which this build no longer
 *    reads; its weights still load with --init dir/last.safetensors"
 *   "dir/last.state: a checkpoint state of format version 3, newer than this build's 2:
 *    update aigc-run"
 * (Format 1 kept the same values by their place, and the caller's record as the raw
 * bytes of its C struct, which no build can map to named fields.)
 */
#ifndef AIGC_CKPT_H
#define AIGC_CKPT_H

#include <stdint.h>

#include "aigc/base.h"
#include "aigc/graph.h"
#include "aigc/optim.h"
#include "aigc/rng.h"

enum { CK_VERSION = 2 };

/* The element types of the state file's records, by their codes in the file. */
typedef enum ck_type { CK_U8 = 1, CK_I32, CK_U32, CK_I64, CK_U64, CK_F32, CK_F64, CK_TYPE_COUNT } ck_type;

/* One of the caller's own values: count elements of type at ptr, saved as the record
 * run.NAME. ck_load writes them back; a record of another count fills the first of
 * them and zeroes the rest (a spec that now logs another number of values resumes, as
 * it would from the end of an epoch). Names are distinct. */
typedef struct ck_field {
    const char *name;
    ck_type type;
    int64_t count;
    void *ptr;
    int optional;          /* a file without the record loads, ptr left as it was: a
                            * field added after files were written */
} ck_field;

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
     * length): every field but an optional one is required on load, in its type. */
    const ck_field *fields;
    int nfields;
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
/* A run's directory into buf (n bytes): out when given (--out), else the spec's own,
 * runs/NAME. */
void ck_run_dir(char *buf, size_t n, const char *out, const char *spec_name);
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
