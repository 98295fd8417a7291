/*
 * spec.h — a spec file, loaded and checked (prefix sp_).
 *
 * sp_load reads the YAML (aigc/yaml.h), applies --set overrides, and checks every
 * section against its schema: unknown keys (with "did you mean"), types, ranges, and
 * the syntax of every expression. What it cannot know without building the models —
 * shapes, names used in the step, which model each update trains — is checked by
 * the program compiler (aigc/program.h), still before any training starts.
 *
 *     sp_spec s;
 *     if (sp_load(&s, "specs/gan.yaml", sets, nsets, &err) != AG_OK) { print err; exit 1 }
 *     ...
 *     sp_free(&s);
 */
#ifndef AIGC_SPEC_H
#define AIGC_SPEC_H

#include <stdint.h>

#include "aigc/arena.h"
#include "aigc/base.h"
#include "aigc/expr.h"
#include "aigc/graph.h"
#include "aigc/optim.h"
#include "aigc/yaml.h"

/* SP_MAX_LOGS: the values under train.log, each a running sum in the metrics. */
enum { SP_MAX_INPUTS = 4, SP_MAX_LAYER_ARGS = 6, SP_MAX_SAMPLE_INPUTS = 16, SP_MAX_LOGS = 64 };

/* A layer's argument as written: a number, or one of the words an argument may take
 * instead (`made 512 order=random`). */
typedef struct sp_arg {
    const char *key;  /* NULL for a positional argument */
    const char *word; /* NULL for a number */
    double num;
    ag_loc loc, key_loc; /* the value's place, the key's */
} sp_arg;

/* One entry of a layer stack, "linear 256" or "leaky_relu 0.2". */
typedef struct sp_layer {
    const char *kind;
    int nargs;
    sp_arg args[SP_MAX_LAYER_ARGS];
    ag_loc loc;
} sp_layer;

/* A node of a graph-form model: `name: expression`. */
typedef struct sp_gnode {
    const char *name;
    ex_node *expr;
    ag_loc loc;
} sp_gnode;

typedef struct sp_model {
    const char *name;
    ag_loc loc;
    int ninputs;
    const char *input_names[SP_MAX_INPUTS];
    ag_shape inputs[SP_MAX_INPUTS];   /* per sample */
    /* a stack: */
    int nlayers;
    sp_layer *layers;
    /* or a graph: */
    int nnodes;
    sp_gnode *nodes;
    int noutputs;
    const char **outputs;
    ag_loc *output_locs;
    /* `ema: DECAY`: an exponential moving average of the weights, for sampling and
     * evaluation; `ema_warmup: true` ramps the decay up over the first updates. */
    int has_ema, ema_warmup;
    double ema_decay;
} sp_model;

typedef struct sp_optim {
    const char *name;
    ag_loc loc;
    opt_kind kind;
    opt_hyper h;
    int nmodels;
    const char **models;
    ag_loc *model_locs;
} sp_optim;

/* What a data set's items are: images with labels (IDX files), windows of text, or
 * feature vectors with labels (float IDX files that aigc-run encode writes). */
typedef enum sp_data_kind { SP_DATA_IMAGES, SP_DATA_TEXT, SP_DATA_FEATURES } sp_data_kind;

typedef struct sp_data {
    const char *dataset;     /* "mnist", "fashion-mnist" (IDX image files), "text" or
                              * "features" */
    sp_data_kind kind;
    const char *path;
    ag_loc path_loc;
    const char *test_path;   /* images, features: the test split's directory (default: path) */
    ag_loc test_path_loc;
    int batch;
    ag_loc batch_loc;
    int shuffle;
    int drop_last;           /* every batch full: a split's last short batch is left out */
    ex_node *x;              /* the transform of `pixels` (`tokens`, `features`) into x */
    int context;             /* text: the tokens a model sees; windows hold one more */
    double test_fraction;    /* text: the share of the corpus held out for testing */
    ag_loc loc;
} sp_data;

/* A value a sample section takes from its user: `inputs: {temperature: 0.8,
 * mask: {image: ~}}`, set from the command line with --input NAME=VALUE. */
typedef enum sp_input_kind { SP_INPUT_NUMBER, SP_INPUT_IMAGE, SP_INPUT_TEXT } sp_input_kind;

typedef struct sp_input {
    const char *name;
    sp_input_kind kind;
    double number;           /* NUMBER: bound as a constant */
    double lo, hi;           /* NUMBER: the values it may take (-inf, inf unless a range) */
    const char *path;        /* IMAGE: a PNG the size of the data's images, read as
                              * pixels [n, H, W] in 0..255; NULL until given */
    const char *text;        /* TEXT: bytes, read as token ids [n, length] in the text
                              * data's vocabulary */
    const char *given;       /* "--prompt TEXT" when the command line set it, else NULL:
                              * what a message about the value names instead of loc */
    ag_loc loc;
} sp_input;

typedef struct sp_sample {
    const char *name;        /* "sample" for a lone section */
    int ninputs;
    sp_input *inputs;
    int nsteps;
    ex_stmt **steps;         /* assignments run before the image */
    /* loop: the statements of loop_steps run for var = from, from + by, ... to; the
     * bounds are expressions of numbers (an input's, a prompt's length), whole numbers
     * when compiled; by NULL: 1 or -1, towards to */
    int has_loop;
    const char *loop_var;
    ex_node *loop_from, *loop_to, *loop_by;
    int nloop_steps;
    ex_stmt **loop_steps;
    ag_loc loop_loc;
    ex_node *image;          /* the result: a batch of images, */
    ex_node *text;           /* or of token ids [n, L], decoded to text, */
    ex_node *features;       /* or of features [n, F], one row per image of a split, which
                              * the section sees as x and label (aigc-run encode); one
                              * of the three is set */
    ex_node *label;          /* the class of each image, [n] (images only), or NULL */
    ag_loc loc;
    int count;               /* `n` in the expressions: how many to draw */
    int each_epoch;          /* drawn after every epoch (default true) */
    int rows, cols;          /* the grid; 0: as square as fits */
    int has_range;
    float lo, hi;            /* value range mapped to black..white */
    int strip_every;         /* > 0: the first image every this many loop passes */
} sp_sample;

/* A diffusion noise schedule: T steps of beta, and alpha = 1 - beta, alpha_bar its
 * running product, as constants [T] in every expression. */
typedef enum sp_schedule_kind { SP_SCHEDULE_LINEAR, SP_SCHEDULE_COSINE } sp_schedule_kind;

typedef struct sp_schedule {
    sp_schedule_kind kind;
    int steps;
    double beta_start, beta_end; /* linear */
    double s;                    /* cosine: the offset of Nichol and Dhariwal */
    ag_loc loc;
} sp_schedule;

typedef struct sp_spec {
    ar_arena arena;
    yt_doc doc;
    const char *path;
    const char *name;
    uint64_t seed;
    sp_data data;
    int nmodels;
    sp_model *models;
    int epochs;
    int noptims;
    sp_optim *optims;
    int nsteps;
    ex_stmt **steps;
    int nlogs;
    const char **logs;
    ag_loc *log_locs;
    int log_every;           /* steps between metric rows */
    const char *nll;         /* train.nll: the logged value that is a negative log-likelihood
                              * in nats (per image, or per token for text); NULL: none */
    ag_loc nll_loc;
    int ckpt_every;          /* steps between checkpoints; 0: at each epoch's end only */
    int ckpt_keep;           /* numbered checkpoints kept beside `last` */
    int on_nan_skip;         /* train.on_nan: skip: a batch with a non-finite loss or
                              * gradient makes no update (else the run stops) */
    int max_skipped;         /* skipped batches in a row before the run stops anyway */
    ag_loc on_nan_loc;
    int nsamples;
    sp_sample *samples;      /* the first is the one drawn after each epoch */
    int sample_count;        /* > 0: overrides section sample_index's count (-n) */
    int sample_index;
    int64_t max_memory;      /* bytes the run may plan; 0: no limit (--max-memory) */
    int has_schedule;
    sp_schedule schedule;
    const char *hooks;       /* a Lua script, or NULL */
    ag_loc hooks_loc;
} sp_spec;

/* An override from the command line: "train.epochs=5". For a sample input given by one
 * of the options that stand for --input (--inpaint FILE is --input picture=FILE),
 * `option` names it and `needs` says what kind of section has that input, for the
 * message when none does. */
typedef struct sp_set {
    const char *text;
    const char *option, *needs;
} sp_set;

int sp_load(sp_spec *s, const char *path, const sp_set *sets, int nsets, ag_error *err);
void sp_free(sp_spec *s);

const sp_model *sp_find_model(const sp_spec *s, const char *name);
int sp_find_optim(const sp_spec *s, const char *name);
const sp_sample *sp_find_sample(const sp_spec *s, const char *name);
/* For "no sample section 'NAME'": "; did you mean 'X'?" when one is close, else the
 * sections there are, " (the spec's: prior, reconstruction, interpolation)". */
const char *sp_sample_hint(const sp_spec *s, const char *name, char *buf, size_t size);

/* --input NAME=VALUE: sets the input NAME of the section called `section`, or, when
 * section is NULL, of every section that has one; a value that does not suit the
 * input's kind, or a name no section declares, is an error. */
int sp_set_inputs(sp_spec *s, const char *section, const sp_set *sets, int nsets, ag_error *err);

#endif
