/*
 * program.h — a checked spec turned into runnable graphs (prefix pg_).
 *
 * pg_build declares every model's parameters (shapes inferred from the spec's input
 * sizes), initializes them like PyTorch, and compiles the training step into one
 * static graph: the data transform, then each statement in order, cut into segments
 * at each `update`. Running a segment means: forward its nodes, then (if it ends in an
 * update) backward from the loss into that optimizer's parameters only, and step the
 * optimizer. So a statement after `update opt_D` sees D as updated, as in PyTorch.
 *
 * Every check that needs shapes or names happens here, before any data is read:
 * shape mismatches, undefined names, a model that no update trains, a bce target whose
 * known range leaves [0, 1]. Errors carry the spec location of the text at fault.
 */
#ifndef AIGC_PROGRAM_H
#define AIGC_PROGRAM_H

#include "aigc/graph.h"
#include "aigc/optim.h"
#include "aigc/rng.h"
#include "aigc/spec.h"

/* One use of a layer in a model, fixed when the model is first built (declared):
 * later calls of the model reuse its parameters. The layer table (ly_def) is private
 * to runtime/spec. */
typedef struct ly_def ly_def;
typedef struct ly_slot {
    const ly_def *def;
    double args[SP_MAX_LAYER_ARGS];
    int param[4], nparam;
    int ntrain;            /* param[0..ntrain) are trained; the rest are buffers
                            * (batch_norm's running statistics, MADE's masks) */
    const int *deg_in, *deg_out; /* MADE: the degrees its mask connects */
    const char *label;     /* how check prints it: "linear 256", or a node's name */
    ag_shape out;          /* output shape at batch 1 */
    int out_batched;
    int64_t params, flops; /* per sample */
    ag_loc loc;
} ly_slot;

/* A model of the spec: its layers' slots, its parameter count and FLOPs per sample. */
typedef struct pg_model {
    const sp_model *spec;
    int nslots, cap;
    ly_slot *slots;
    int declared;
    int calling;           /* being built: a model that reaches itself is refused */
    int64_t params, flops;
} pg_model;

/* A sample section, built for inference. */
typedef struct pg_sampler {
    const sp_sample *spec;
    ag_graph graph;
    ag_node *pixels, *labels; /* [count, H, W], [count]: the caller writes test images */
    ag_node *inputs[SP_MAX_SAMPLE_INPUTS]; /* per spec input: [count, H, W] for an image,
                                            * [count, length] for text, which the caller
                                            * writes; NULL for a number */
    int inputs_written;    /* they were: the files and texts do not change during a run */
    ag_node *image;        /* the result: images, or token ids [count, L] for text */
    int text;              /* the result is text (the spec's `text:`) */
    ag_node *label;        /* the spec's `label:`, one class per image [images], or NULL */
    int features;          /* the result is features [count, F] (the spec's `features:`),
                            * of the images the caller writes into pixels and labels */
    int count;             /* n */
    int images, channels;  /* of the image expression's result */
    int grid_rows, grid_cols;
    float lo, hi;          /* mapped to black..white; equal: from the values */
    /* loop: nodes [loop_begin, loop_end) run once per value of loop_var; carried
     * values go from carry_out back to carry_in after each pass. */
    int loop_begin, loop_end;
    int loop_from, loop_to, loop_by; /* the spec's bounds, evaluated */
    ag_node *loop_var;
    int ncarry;
    ag_node **carry_init, **carry_in, **carry_out;
    /* strip: the first image before the loop, after every strip_every passes, and at
     * the end: [strip_frames, channels, rows, cols] */
    int strip_frames;
    float *strip;
} pg_sampler;

/* The exponential moving average of one model's weights (its `ema:`). The averages are
 * parameters of the store, named "ema.MODEL...." after the model's own ("ema.G.0.weight"
 * averages "G.0.weight"), so checkpoints keep them and --resume restores them. After
 * each step of an optimizer that trains the model, with d the decay (with warmup,
 * min(decay, (1 + k) / (10 + k)) after the optimizer's k-th step):
 *     ema = d * ema + (1 - d) * w
 * over runs of floats that are contiguous in both (one run when the model's weights
 * are). */
typedef struct pg_ema_run {
    int64_t live, avg, len;   /* offsets into the store's slab, in floats */
} pg_ema_run;

typedef struct pg_ema {
    int model;
    float decay;
    int warmup;
    int nruns;
    pg_ema_run *runs;
    unsigned char *by_optim;  /* per optimizer of the spec: it trains this model */
} pg_ema;

/* One update point of the step. */
typedef struct pg_segment {
    int from, to;          /* forward nodes [from, to) */
    int optim;             /* index into the spec's optimizers, -1 for a plain tail */
    ag_node *loss;
    ag_bwplan *bw;
    int every;             /* `update OPT every K`: K; 1 for every step */
} pg_segment;

/* A constant table in a graph: an input node written once after planning. */
typedef struct pg_const {
    ag_graph *graph;
    ag_node *node;
    const char *name;
    const float *values;
} pg_const;

/* Forward-only copies of the step's graph, for evaluating a batch per thread. */
typedef struct pg_copies {
    int n;
    ag_graph *graphs;
    int refused;           /* there was no room for another */
} pg_copies;

typedef struct pg_program {
    const sp_spec *spec;
    ag_params params;
    rng rng;               /* the training's draws: initial weights, noise, dropout */
    rng sample_rng;        /* the sample graph's draws */
    int nmodels;
    pg_model *models;
    opt_optimizer *optims;

    ag_graph step;         /* the training step over one batch */
    ag_node *pixels;       /* [B, H, W] inputs written per batch; text: `tokens` [B, cols] */
    ag_node *labels;       /* [B] */
    int nsegs;
    pg_segment *segs;
    int nlogs;
    ag_node **logs;        /* the logged scalars, in the spec's order */
    int nll_log;           /* train.nll's index in logs, -1 without one */
    const char **log_names;
    ag_loc *node_stmt;     /* per step node: the statement that made it */
    /* Per step node, the period K of the steps it runs on: those whose steps_done is a
     * multiple of K. Above 1 for a node whose value reaches only updates made every K
     * (or a multiple of K) steps, 1 for the rest. */
    int *node_every;
    int *log_every;        /* per logged value: its node's period */
    int64_t steps_done;    /* the caller's: steps trained before the next pg_train_* */
    int nnamed;            /* the step's named tensors, for hooks */
    const char **named;
    ag_node **named_nodes;

    int nsamples;
    pg_sampler *samples;   /* one per section of the spec's sample: */

    /* The diffusion schedule's tables, [T] each: beta, alpha, alpha_bar. */
    int sched_steps;
    float *sched[3];
    int nconsts;
    pg_const *consts;

    int rows, cols;        /* of the data's images */
    int classes;
    int bad_seg;           /* the segment of a PG_SKIPPED or PG_OVERFLOWED step */
    int nema;
    pg_ema *ema;
    pg_copies copies;      /* pg_eval_graphs' */
} pg_program;

/* ------------------------------------------ compiling (compile.c, sampler.c) -- */

/* rows, cols and classes describe the data: its images are rows x cols in classes
 * classes; for text (the spec's data.kind), its windows are 1 x cols tokens (context + 1)
 * and classes is the vocabulary's size. */
int pg_build(pg_program *p, const sp_spec *s, int rows, int cols, int classes, ag_error *err);
void pg_free(pg_program *p);

/* ---------------------------------------------------------- running (run.c) -- */

/* Whether the step after p->steps_done computes logged value k (log_every). */
int pg_log_made(const pg_program *p, int k);

/* One training step on the batch already written into p->pixels and p->labels.
 * An update made every K steps, and the nodes only it needs, run when p->steps_done is
 * a multiple of K.
 * AG_ERR when an op failed (p->step.err). With train.on_nan: skip, PG_SKIPPED when the
 * loss or a gradient of segment p->bad_seg's update was non-finite: that update and the
 * rest of the step did not run; PG_OVERFLOWED when that update, from finite values,
 * made a parameter non-finite (a learning rate far too large). */
enum { PG_SKIPPED = 2, PG_OVERFLOWED = 3 };
int pg_train_step(pg_program *p, int batch);
/* A rank's share of a data-parallel step (dist.h): rows [lo, lo + n) of a batch of
 * `global`, written into p->pixels and p->labels; the gradients are summed over the
 * ranks before each update. n may be 0: the rank runs the step without adding to it.
 * pg_train_step(p, batch) is the whole batch on one rank. */
int pg_train_shard(pg_program *p, int lo, int n, int global);
/* The same statements, no updates, dropout off: for the test split. */
int pg_eval_step(pg_program *p, int batch);
/* Up to `want` graphs that run the step's statements side by side, one batch each, in
 * out: the step's own, then forward-only copies of it with the same parameters, made on
 * the first call that wants them and kept. Fewer when the copies would take more than a
 * quarter of the memory the run plans without them, or more than --max-memory leaves.
 * The caller sets each graph's batch, generator and `training`. */
int pg_eval_graphs(pg_program *p, int want, ag_graph **out);
/* Exchanges the weights of every model that has an `ema:` with their averages, so the
 * same graphs run either; a second call undoes the first. pg_sample does it around each
 * sampling, mt_evaluate around evaluation. */
void pg_ema_swap(pg_program *p);
/* Runs sample section k, with the models' averages where they have them, its noise
 * drawn from seed, after the caller wrote its pixels and labels; the images are
 * p->samples[k].image->data. */
int pg_sample(pg_program *p, int k, uint64_t seed, ag_error *err);
/* Whether section k's result or its labels depend on the test images or labels the
 * caller writes (test_x, test_label), through its loop's carried values too: whether
 * drawing it needs the data set. */
int pg_sample_reads_data(const pg_program *p, int k);

#endif
