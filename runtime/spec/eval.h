/*
 * eval.h — private to runtime/spec: the evaluator that turns spec expressions into
 * graph nodes (prefix ev_), the layer table (ly_) and the builtin table (bi_).
 *
 * Values: a tensor (a node, with the range its values can take when that is known),
 * a number, a bare word (`sum` in `bce(p, x, sum)`), or `batch`, the batch size.
 * Ranges are tracked so that `check` can prove a bce target leaves [0, 1] (the seed
 * VAE's bug) without running anything.
 */
#ifndef AIGC_SPEC_EVAL_H
#define AIGC_SPEC_EVAL_H

#include "aigc/args.h"
#include "aigc/program.h"

typedef enum pv_kind { PV_NONE, PV_TENSOR, PV_NUM, PV_WORD, PV_BATCH } pv_kind;

typedef struct pv {
    pv_kind kind;
    ag_node *node;
    double num;
    const char *word;
    float lo, hi;          /* tensors: every value lies in [lo, hi] */
    ag_loc loc;
} pv;

enum { EV_MAX_OUT = 16 };

typedef struct ev_binding {
    const char *name;
    pv val;
} ev_binding;

typedef struct ev_ctx {
    pg_program *p;
    ag_graph *g;
    ev_binding *env;
    int nenv, cap, scope;  /* names are looked up from the end down to scope */
    /* while building a model: */
    pg_model *model;
    int cursor;            /* next slot */
    const char *node;      /* graph-form node being built, or NULL in a stack */
    int node_layers;       /* layers with parameters used so far by that node */
    int layer_index;       /* stack position */
    const int *made_deg;   /* MADE: the degrees of the last masked layer's outputs */
    int made_n, made_d;    /* their count; the autoregressive dimension */
    const int *made_order; /* the inputs' degrees: input i is the made_order[i]-th */
} ev_ctx;

void ev_bind(ev_ctx *c, const char *name, pv v);
const pv *ev_lookup(const ev_ctx *c, const char *name);
int ev_eval(ev_ctx *c, const ex_node *e, pv *out, ag_error *err);
/* An expression that may yield several values (split, a model with several outputs). */
int ev_eval_multi(ev_ctx *c, const ex_node *e, pv *outs, int *nout, ag_error *err);
int ev_call_model(ev_ctx *c, pg_model *m, const pv *args, int nargs, ag_loc loc, pv *outs,
                  int *nout, ag_error *err);
pv ev_tensor(ag_node *n, float lo, float hi, ag_loc loc);

/* ---- layers: usable in a stack ("leaky_relu 0.2") and as calls in a graph model */

struct ly_def {
    const char *name;
    ab_sig args;  /* at most SP_MAX_LAYER_ARGS */
    /* Adds the parameters of slot s for input x, named from prefix. */
    int (*declare)(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err);
    ag_node *(*apply)(ev_ctx *c, const ly_slot *s, ag_node *x);
    /* The output range for an input in [lo, hi]; NULL: unknown. */
    void (*range)(const double *args, float *lo, float *hi);
    /* PyTorch's default initialization of the slot's parameters. */
    void (*init)(const ly_slot *s, ag_params *ps, rng *r);
    /* FLOPs per sample for output y; NULL: one per output value (and linear's own
     * count from declare). */
    int64_t (*flops)(const ly_slot *s, const ag_node *y);
};

const ly_def *ly_find(const char *name);
void ly_offer_names(void *sg_best_ptr);
/* Fills args from a stack entry's or a call's arguments, checking count, names, words
 * and ranges; a message points at the argument, or at loc (the layer) for one missing. */
int ly_args(const ly_def *d, const sp_arg *in, int n, double *args, ag_loc loc, ag_error *err);
/* The index of d's argument named key, or for a positional one (key NULL) pos; -1 when
 * d has no argument of that name. */
int ly_arg_index(const ly_def *d, const char *key, int pos);
/* Whether argument at (an index, or -1) takes words instead of numbers. */
int ly_takes_words(const ly_def *d, int at);
/* Applies a layer to x inside model building: declares on the first build. */
int ly_apply(ev_ctx *c, const ly_def *d, const double *args, const pv *x, ag_loc loc, pv *out,
             ag_error *err);

/* ---- builtins of the step language */

typedef struct bi_def bi_def;
const bi_def *bi_find(const char *name);
void bi_offer_names(void *sg_best_ptr);
int bi_call(ev_ctx *c, const bi_def *d, const ex_node *call, pv *outs, int *nout, ag_error *err);

#endif
