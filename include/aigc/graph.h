/*
 * graph.h — tensors and reverse-mode autograd on a static graph (prefix ag_).
 *
 * Overview
 * --------
 * A graph is built once, planned once, then run forward and backward many times.
 * Nodes are created in topological order (a node can only name nodes that exist), so
 * the creation order is the execution order; no sorting is ever needed.
 *
 *     ag_params ps;  ag_params_init(&ps);
 *     int w = ag_params_add(&ps, "fc.weight", ag_shape2(1, 784), loc);
 *     int b = ag_params_add(&ps, "fc.bias", ag_shape1(1), loc);
 *     ag_params_alloc(&ps);                     // one slab for data, one for grads
 *
 *     ag_graph g;  ag_graph_init(&g, &ps, &rng);
 *     ag_node *x = ag_input(&g, "x", ag_shape2(0, 784), 1);   // dim 0 is the batch
 *     ag_node *p = ag_unary(&g, AG_OP_SIGMOID,
 *                           ag_linear(&g, x, ag_param(&g, w), ag_param(&g, b)));
 *     ag_node *loss = ag_loss(&g, AG_OP_BCE, p, ag_full_like(&g, p, 1.0f), AG_RED_MEAN);
 *     if (!loss) { fputs(g.err.msg, stderr); ... }      // builders return NULL on error
 *     ag_bwplan *bw = ag_backward_plan(&g, loss, (int[]){w, b}, 2, &err);
 *     ag_graph_plan(&g, 64, &err);              // all memory, planned for batch <= 64
 *
 *     ag_graph_set_batch(&g, 64);               // the last batch may be smaller
 *     memcpy(x->data, batch, ...);
 *     ag_forward(&g, 0, g.n);
 *     ag_backward(&g, bw);                      // grads of w and b, nothing else
 *
 * Shapes
 * ------
 * Row-major, contiguous, float32, 0 to 4 dimensions (0 = a scalar). A leaf marked
 * batched has a dynamic dimension 0 set by ag_graph_set_batch; every other node's
 * shape is inferred from its sources by its op's `infer`, again at each batch change.
 * Memory is planned at the largest batch, so a smaller batch only shrinks shapes.
 *
 * Gradients
 * ---------
 * ag_backward_plan(loss, params) finds the nodes that lie on a path from one of the
 * params to the loss and not through a detach; only those get a backward call, and each
 * call accumulates (+=) only into the sources that need it. A gradient is zeroed just
 * before the first backward call that reaches it, unless that call can write it
 * outright: an op flagged AG_DEF_BW_ASSIGN then finds that source's bit in
 * g->bw_assign and stores its gradient instead of adding it (an sgemm with beta 0).
 * The calls after it accumulate as usual. The loss's gradient is set to 1.
 *
 * Memory reuse
 * ------------
 * A graph may set g->reuse before ag_graph_plan. In a forward-only graph (no backward
 * plan) a node's buffer is then free once the last node reading it has run, and a
 * later node takes it, so the slab holds what is live at once rather than every value.
 * After a run only the inputs, the nodes kept with ag_keep and the aliases of both
 * still hold their values; the caller keeps what it reads. ag_graph_copy's copies
 * reuse, keeping the nodes kept in the source.
 * In a graph with backward plans, every value keeps its buffer (a backward call reads
 * them after the whole forward ran), and the gradients share within a pass instead: a
 * node's gradient lives from the first backward call that writes it to its own node's
 * call, which reads it last. Each plan lays out its pass on its own, in one region of
 * the slab, and ag_backward points the grads at its layout. After a pass only the
 * parameters' gradients (their own slab) hold their values.
 *
 * Errors
 * ------
 * Builders return NULL and leave a message with the node's spec location in g->err
 * when shapes do not fit; a NULL source makes a builder return NULL at once, so a chain
 * of builder calls needs one check at its end. A forward op that meets bad data at run
 * time (a bce target outside [0, 1]) sets g->failed and g->err; ag_forward returns
 * AG_ERR after that node.
 */
#ifndef AIGC_GRAPH_H
#define AIGC_GRAPH_H

#include <stdint.h>

#include "aigc/arena.h"
#include "aigc/base.h"
#include "aigc/rng.h"

enum { AG_MAX_DIMS = 4, AG_MAX_SRC = 5, AG_MAX_FP = 4, AG_MAX_IP = 8 };

typedef struct ag_shape {
    int ndim;
    int d[AG_MAX_DIMS];
} ag_shape;

ag_shape ag_shape0(void);
ag_shape ag_shape1(int d0);
ag_shape ag_shape2(int d0, int d1);
ag_shape ag_shape3(int d0, int d1, int d2);
ag_shape ag_shape4(int d0, int d1, int d2, int d3);
int64_t ag_numel(const ag_shape *s);
int ag_shape_eq(const ag_shape *a, const ag_shape *b);
/* "[64, 784]"; with batched, dim 0 prints as B: "[B, 784]". Returns buf. */
char *ag_shape_str(const ag_shape *s, int batched, char *buf, size_t len);

/* Every op. Leaves first; the table in runtime/ops/table.c is indexed by this enum
 * and a static_assert keeps the two the same length. Parameters of an op live in the
 * node's f[] and i[] arrays, as noted. */
typedef enum ag_op {
    /* leaves */
    AG_OP_INPUT,        /* fed from outside through ->data */
    AG_OP_PARAM,        /* a parameter from the graph's ag_params, i[0] = its index */
    AG_OP_FULL,         /* constant f[0] */
    AG_OP_RANDN,        /* N(f[0], f[1]^2), drawn at every forward */
    AG_OP_RAND,         /* U[f[0], f[1]), drawn at every forward */
    AG_OP_BATCH_SIZE,   /* a scalar holding the current batch size */
    AG_OP_CYCLE,        /* [n]: k % i[0] at position k */
    /* shaped like src 0; src 0 gets no gradient from them */
    AG_OP_FULL_LIKE,    /* f[0] */
    AG_OP_RANDN_LIKE,
    AG_OP_RAND_LIKE,
    AG_OP_DETACH,       /* identity forward, no gradient */
    /* element-wise, broadcasting like NumPy (shapes aligned at the right) */
    AG_OP_ADD,
    AG_OP_SUB,
    AG_OP_MUL,
    AG_OP_DIV,
    /* element-wise with scalars */
    AG_OP_AFFINE,       /* f[0] * x + f[1] */
    AG_OP_RDIV,         /* f[0] / x */
    AG_OP_NEG,
    AG_OP_EXP,
    AG_OP_LOG,
    AG_OP_SQRT,
    AG_OP_POW,          /* x ^ f[0] */
    AG_OP_ABS,
    AG_OP_CLAMP,        /* into [f[0], f[1]]; +-INFINITY for an open side */
    AG_OP_RELU,
    AG_OP_LEAKY_RELU,   /* slope f[0] */
    AG_OP_ELU,          /* alpha f[0] */
    AG_OP_TANH,
    AG_OP_SIGMOID,
    AG_OP_SOFTPLUS,     /* beta f[0], threshold f[1], as torch.nn.Softplus */
    AG_OP_SILU,
    AG_OP_GELU,         /* the exact (erf) form, PyTorch's default */
    /* reductions */
    AG_OP_SUM,          /* everything, to a scalar */
    AG_OP_MEAN,
    AG_OP_SUM_AXIS,     /* axis i[0] (negative counts from the end), keepdim i[1] */
    AG_OP_MEAN_AXIS,
    /* shape */
    AG_OP_RESHAPE,      /* to i[0..ndim-1], ndim i[4]; one -1 is inferred. Aliases src 0. */
    AG_OP_CONCAT,       /* 2 to AG_MAX_SRC sources along axis i[0] */
    AG_OP_SLICE,        /* [i[1], i[2]) along axis i[0] */
    AG_OP_ROW_PART,     /* part i[0] of i[1] equal parts of dim 0 (a batch's rows): not batched */
    AG_OP_GATHER,       /* torch.gather(src0, i[0], index=src1), indices stored as floats */
    AG_OP_ONE_HOT,      /* class indices [...] as floats -> [..., i[0]]; no gradient */
    AG_OP_SOFTMAX,      /* along axis i[0] */
    AG_OP_LOG_SOFTMAX,
    /* linear algebra (bk_sgemm) */
    AG_OP_MATMUL,       /* src0 [..., M, K] @ src1 [..., K, N]; i[0], i[1] transpose each */
    AG_OP_LINEAR,       /* x [..., in] W [out, in] (+ b [out]) -> [..., out] */
    /* losses; reduction i[0] is an ag_reduction */
    AG_OP_BCE,          /* (p, target), log clamped at -100 as PyTorch */
    AG_OP_BCE_LOGITS,   /* (logits, target) */
    AG_OP_MSE,
    AG_OP_L1,
    AG_OP_CROSS_ENTROPY, /* (logits [..., C], class indices [...] as floats) */
    AG_OP_KL_NORMAL,    /* (mu, logvar): -0.5 * (1 + logvar - mu^2 - exp(logvar)) */
    AG_OP_HINGE,        /* (scores, target): max(0, 1 - target * scores) */
    AG_OP_WASSERSTEIN,  /* (scores, target): -target * scores */
    /* regularization */
    AG_OP_DROPOUT,      /* p f[0]; identity when the graph is not training */
    /* convolution, NCHW (runtime/ops/conv.c, pool.c) */
    AG_OP_CONV2D,       /* x, W [C_out, C_in, kH, kW] (, b [C_out]); stride i[0], i[1]
                         * (h, w), padding i[2], i[3] */
    AG_OP_CONV_TRANSPOSE2D, /* x, W [C_in, C_out, kH, kW] (, b); as conv2d, and
                             * output_padding i[4], i[5] */
    AG_OP_AVG_POOL2D,   /* square kernel i[0], stride i[1]; no padding */
    AG_OP_UPSAMPLE_NEAREST2D, /* integer scale i[0] */
    /* normalization, embedding, attention (runtime/ops/norm.c, embed.c, attention.c,
     * masked_linear.c, spectral.c) */
    AG_OP_LAYER_NORM,   /* x [..., C] (, weight [C] (, bias [C])) over the last dim; eps f[0] */
    AG_OP_GROUP_NORM,   /* x [N, C, ...] (, weight [C] (, bias [C])); groups i[0], eps f[0] */
    AG_OP_BATCH_NORM,   /* x [N, C, ...], weight, bias, running_mean, running_var [C]; eps f[0], momentum f[1] */
    AG_OP_EMBEDDING,    /* weight [V, D], indices [...] as floats -> [..., D]; no gradient to the indices */
    AG_OP_CAUSAL_ATTENTION, /* qkv [B, T, 3C] -> [B, T, C]; heads i[0] */
    AG_OP_TIMESTEP_EMBEDDING, /* t [N] -> [N, i[0]], sinusoidal; no gradient */
    AG_OP_MASKED_LINEAR, /* x [..., in], W [out, in], mask [out, in] (, b [out]); the mask gets no gradient */
    AG_OP_SPECTRAL_NORM, /* W [O, ...], u [O], v [I]: W / sigma; a training forward updates u, v; eps f[0] */
    AG_OP_INTERPOLATE,  /* a, b [m, ...] -> [m * i[0], ...]: i[0] steps from a to b per row */
    AG_OP_RANDINT,      /* integers uniform in [0, i[0]), drawn at every forward */
    AG_OP_THRESHOLD,    /* 1 where x > f[0], else 0; no gradient */
    AG_OP_BERNOULLI,    /* 1 with probability p = src0 (in [0, 1]), drawn at every forward */
    AG_OP_TABLE_AT,     /* table [T], index [N...] -> table[index], f[0] where the index is
                         * outside [0, T); shaped [N, 1, ...] to rank i[0] (0: as index) */
    AG_OP_CATEGORICAL,  /* logits [..., V] -> [...]: an index drawn from softmax(logits) at every
                         * forward, among the i[0] largest logits (0: all) */
    AG_OP_COUNT
} ag_op;

typedef enum ag_reduction { AG_RED_MEAN, AG_RED_SUM, AG_RED_NONE } ag_reduction;

typedef struct ag_node ag_node;
typedef struct ag_graph ag_graph;

struct ag_node {
    ag_op op;
    int id;                 /* index in the graph's creation order */
    int nsrc;
    ag_node *src[AG_MAX_SRC];
    ag_shape shape;         /* current shape, at the current batch */
    int batched;            /* dim 0 is the batch (set by infer; leaves by their maker) */
    float f[AG_MAX_FP];
    int i[AG_MAX_IP];
    float *data;
    float *grad;            /* NULL unless some backward plan needs it */
    float *aux;             /* op-private memory, planned like data */
    int64_t aux_numel;      /* set by infer, at the current batch */
    int64_t aux_cap;        /* floats at aux: aux_numel at the batch it was planned at */
    int has_grad;           /* some backward plan accumulates into this node */
    /* Fusion, set by ag_graph_plan: an op flagged AG_DEF_EPILOGUE runs the range of one
     * element-wise consumer (its epilogue) on each piece of its output as it makes it,
     * while the piece is in cache, and that consumer's own forward is skipped (fused).
     * The consumer keeps its buffer and its backward: only the pass is saved. */
    ag_node *epilogue;
    int fused;
    int kept;               /* ag_keep: holds its value after a run of a reusing graph */
    const char *name;       /* optional, for messages and hooks */
    ag_loc loc;             /* the spec text that made this node */
};

typedef struct ag_parameter {
    const char *name;       /* PyTorch-style: "G.0.weight" */
    ag_shape shape;
    int64_t offset;         /* into the data and grad slabs, in floats */
    float *data, *grad;     /* set by ag_params_alloc */
    ag_loc loc;
} ag_parameter;

/* All parameters of a run: one slab of values, one of gradients. Parameters added one
 * after the other are contiguous, so an optimizer over whole models walks ranges. */
typedef struct ag_params {
    ar_arena arena;
    int n, cap;
    ag_parameter *p;
    int64_t total;          /* floats */
    float *data, *grad;
} ag_params;

void ag_params_init(ag_params *ps);
int ag_params_add(ag_params *ps, const char *name, ag_shape shape, ag_loc loc);
int ag_params_find(const ag_params *ps, const char *name); /* -1 when absent */
void ag_params_alloc(ag_params *ps);
void ag_params_free(ag_params *ps);

/* One backward step of a plan: call op backward on node with source mask need. */
typedef struct ag_bstep {
    ag_node *node;
    unsigned need;
    unsigned assign;        /* of need: sources this call writes rather than adds to */
    int nzero;              /* the next nzero of the plan's zero list: cleared before it */
} ag_bstep;

typedef struct ag_bwplan ag_bwplan;
struct ag_bwplan {
    ag_node *loss;
    int nsteps;
    ag_bstep *steps;        /* reverse creation order */
    int nzero;
    ag_node **zero;         /* grads the steps add to first, each cleared before its step */
    /* With g->reuse, set by ag_graph_plan: the nodes whose grads this pass lays out
     * (aliases included) and their offsets in g->slab. */
    int ngrads;
    ag_node **grads;
    int64_t *grad_at;
    int64_t grad_floats;    /* the pass's region of the slab */
    ag_bwplan *next;        /* the graph's plans, latest first */
};

struct ag_graph {
    ar_arena arena;
    ag_params *params;
    rng *rng;
    int n, cap;
    ag_node **nodes;        /* creation order = execution order */
    ag_node **param_node;   /* per parameter index: its node here, or NULL */
    int nparam_node;
    int batch, max_batch;
    /* A shard (ag_graph_set_shard): this graph runs rows [shard_lo, shard_lo + batch) of
     * a batch of global_batch rows; global_batch <= batch when it runs a whole batch. */
    int shard_lo, global_batch;
    int planned;
    int training;           /* dropout is active; 1 by default */
    unsigned bw_assign;     /* during a backward call: its ag_bstep's assign */
    int failed;
    ag_error err;
    ag_loc loc;             /* stamped on the nodes made next */
    float *slab;            /* all planned memory */
    int64_t slab_floats;    /* its size, for reports */
    int64_t max_bytes;      /* ag_graph_plan refuses a larger slab; 0: no limit */
    int reuse;              /* set before ag_graph_plan: buffers shared by lifetime */
    ag_bwplan *plans;       /* ag_backward_plan's, latest first */
    int loop_begin, loop_end; /* ag_graph_loop's range; both 0 when there is none */
};

void ag_graph_init(ag_graph *g, ag_params *ps, rng *r);
void ag_graph_free(ag_graph *g);
/* The spec text responsible for the nodes built next. */
void ag_graph_set_loc(ag_graph *g, ag_loc loc);

/* Generic builder: checks source counts, infers the shape, reports mismatches. */
ag_node *ag_new(ag_graph *g, ag_op op, int nsrc, ag_node *const *src, const float *f,
                const int *ip);

/* A leaf of any leaf op with the given shape (the named leaf builders below wrap it). */
ag_node *ag_leaf(ag_graph *g, ag_op op, ag_shape shape, int batched, const float *f,
                 const int *ip);

/* Leaves. For a batched leaf, shape.d[0] is ignored and follows the batch. */
ag_node *ag_input(ag_graph *g, const char *name, ag_shape shape, int batched);
ag_node *ag_param(ag_graph *g, int index);
ag_node *ag_full(ag_graph *g, ag_shape shape, int batched, float value);
ag_node *ag_randn(ag_graph *g, ag_shape shape, int batched, float mean, float std);
ag_node *ag_rand(ag_graph *g, ag_shape shape, int batched, float lo, float hi);
ag_node *ag_full_like(ag_graph *g, ag_node *x, float value);
ag_node *ag_randn_like(ag_graph *g, ag_node *x);
ag_node *ag_rand_like(ag_graph *g, ag_node *x);
ag_node *ag_detach(ag_graph *g, ag_node *x);
ag_node *ag_batch_size(ag_graph *g);
ag_node *ag_cycle(ag_graph *g, int n, int period);

/* Element-wise. */
ag_node *ag_unary(ag_graph *g, ag_op op, ag_node *x);          /* ops without params */
ag_node *ag_binary(ag_graph *g, ag_op op, ag_node *a, ag_node *b);
ag_node *ag_affine(ag_graph *g, ag_node *x, float scale, float shift);
ag_node *ag_rdiv(ag_graph *g, float num, ag_node *x);
ag_node *ag_pow(ag_graph *g, ag_node *x, float p);
ag_node *ag_clamp(ag_graph *g, ag_node *x, float lo, float hi);
ag_node *ag_leaky_relu(ag_graph *g, ag_node *x, float slope);
ag_node *ag_elu(ag_graph *g, ag_node *x, float alpha);
ag_node *ag_softplus(ag_graph *g, ag_node *x, float beta, float threshold);

/* Reductions and shape. */
ag_node *ag_sum(ag_graph *g, ag_node *x);
ag_node *ag_mean(ag_graph *g, ag_node *x);
ag_node *ag_sum_axis(ag_graph *g, ag_node *x, int axis, int keepdim);
ag_node *ag_mean_axis(ag_graph *g, ag_node *x, int axis, int keepdim);
ag_node *ag_reshape(ag_graph *g, ag_node *x, int ndim, const int *dims);
ag_node *ag_flatten(ag_graph *g, ag_node *x);  /* [B, ...] -> [B, prod(...)] */
ag_node *ag_concat(ag_graph *g, int n, ag_node *const *xs, int axis);
ag_node *ag_slice(ag_graph *g, ag_node *x, int axis, int start, int end);
/* Part `part` of `parts` equal parts of x's dim 0, also of a batched x's rows (the part
 * is then not batched, its rows a share of each batch's). */
ag_node *ag_row_part(ag_graph *g, ag_node *x, int part, int parts);
ag_node *ag_gather(ag_graph *g, ag_node *x, int axis, ag_node *index);
ag_node *ag_one_hot(ag_graph *g, ag_node *index, int classes);
ag_node *ag_interpolate(ag_graph *g, ag_node *a, ag_node *b, int steps);
ag_node *ag_randint(ag_graph *g, ag_shape shape, int batched, int high);
ag_node *ag_threshold(ag_graph *g, ag_node *x, float t);
ag_node *ag_bernoulli(ag_graph *g, ag_node *p);
ag_node *ag_categorical(ag_graph *g, ag_node *logits, int top_k /* 0: all */);
ag_node *ag_table_at(ag_graph *g, ag_node *table, ag_node *index, float outside, int rank);
ag_node *ag_softmax(ag_graph *g, ag_node *x, int axis);
ag_node *ag_log_softmax(ag_graph *g, ag_node *x, int axis);

/* Linear algebra. */
ag_node *ag_matmul(ag_graph *g, ag_node *a, ag_node *b, int trans_a, int trans_b);
ag_node *ag_linear(ag_graph *g, ag_node *x, ag_node *w, ag_node *b /* may be NULL */);

/* Losses. */
ag_node *ag_loss(ag_graph *g, ag_op op, ag_node *a, ag_node *b, ag_reduction red);
ag_node *ag_dropout(ag_graph *g, ag_node *x, float p);

/* Convolution on [N, C, H, W], PyTorch's semantics and weight layouts (square stride,
 * padding and output_padding; the ops take them per dim in i[]). b may be NULL. */
ag_node *ag_conv2d(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, int stride, int padding);
ag_node *ag_conv_transpose2d(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, int stride,
                             int padding, int output_padding);
ag_node *ag_avg_pool2d(ag_graph *g, ag_node *x, int kernel, int stride); /* stride 0: kernel */
ag_node *ag_upsample_nearest2d(ag_graph *g, ag_node *x, int scale);

/* Normalization, embedding and attention. layer_norm's and group_norm's b may be NULL,
 * and their w too when b is. The running statistics of batch_norm are nodes (parameters
 * that no optimizer updates) which a training forward updates in place, with PyTorch's
 * momentum (0.1 there). */
ag_node *ag_layer_norm(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, float eps);
ag_node *ag_group_norm(ag_graph *g, ag_node *x, int groups, ag_node *w, ag_node *b, float eps);
ag_node *ag_batch_norm(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, ag_node *running_mean,
                       ag_node *running_var, float eps, float momentum);
ag_node *ag_embedding(ag_graph *g, ag_node *weight, ag_node *index);
ag_node *ag_causal_attention(ag_graph *g, ag_node *qkv, int heads);
ag_node *ag_timestep_embedding(ag_graph *g, ag_node *t, int dim);
ag_node *ag_masked_linear(ag_graph *g, ag_node *x, ag_node *w, ag_node *mask,
                          ag_node *b /* may be NULL */);
/* W / sigma, sigma its largest singular value as estimated from the buffers u and v
 * (parameters that no optimizer updates), which a training forward moves one step of
 * the power method, as torch.nn.utils.spectral_norm (runtime/ops/spectral.c). */
ag_node *ag_spectral_norm(ag_graph *g, ag_node *w, ag_node *u, ag_node *v, float eps);

/* Backward plans; must all be made before ag_graph_plan. params are indices into
 * g->params. Fails when loss is not a scalar or depends on none of the params. */
ag_bwplan *ag_backward_plan(ag_graph *g, ag_node *loss, const int *params, int nparams,
                            ag_error *err);

/* n's value stays readable after a run when the graph reuses buffers (the caller
 * reads it: a sample's image, a logged value). Before ag_graph_plan. */
void ag_keep(ag_graph *g, ag_node *n);
/* Nodes [begin, end) run many times after [0, begin) ran once, and [end, g->n) after
 * some of those passes (a sample section's loop). With reuse, a value read across an
 * edge of the range keeps its buffer; what is made and read within one part shares.
 * Before ag_graph_plan, at most once. */
void ag_graph_loop(ag_graph *g, int begin, int end);

/* Plans all memory for batches up to max_batch, then sets that batch. */
int ag_graph_plan(ag_graph *g, int max_batch, ag_error *err);
void ag_graph_set_batch(ag_graph *g, int batch);
/* Rows [lo, lo + n) of a batch of `global` rows, the rest of which other processes run
 * (dist.h): the batch is n, and the ops see the whole batch where it matters, so that
 * the shards' values add up to the whole batch's. A mean over a batched tensor divides
 * by the whole batch's count (ag_mean_count), batch_size is `global`, and a random op
 * on a batched node draws the values of every row from g->rng, keeping its own rows:
 * every shard's generator advances as the whole batch's would. ag_graph_set_batch ends
 * the shard. */
void ag_graph_set_shard(ag_graph *g, int lo, int n, int global);
/* The batch the ops see: global_batch in a shard, else the batch. */
int ag_global_batch(const ag_graph *g);
/* What a mean over x's `count` elements divides by: count, or in a shard, for a
 * batched x, the count the whole batch would have. */
int64_t ag_mean_count(const ag_graph *g, const ag_node *x, int64_t count);
/* A random op on n in a shard: how many of its draws (elements of n) come before its
 * rows and after them, which it makes and discards. 0 and 0 outside a shard. */
void ag_shard_draws(const ag_graph *g, const ag_node *n, int64_t *before, int64_t *after);
/* For a backward of an AG_DEF_BW_ASSIGN op that adds into some of its sources'
 * gradients instead of writing them (a small weight's, or every one on a slower path):
 * zeroes the gradients among `which` (a bit per source) that g->bw_assign asks it to
 * write, and returns g->bw_assign without them, the sources it must still write. */
unsigned ag_bw_clear(ag_graph *g, ag_node *n, unsigned which);
/* A copy of planned graph src for forward runs on another thread: the same nodes and
 * parameters, memory of its own, reused by lifetime (no gradients; only the inputs and
 * src's kept nodes hold their values after a run; max_bytes as ag_graph's), its
 * inputs' current values, drawing from r. AG_ERR when max_bytes leaves no room. */
int ag_graph_copy(ag_graph *dst, const ag_graph *src, rng *r, int64_t max_bytes, ag_error *err);
/* Runs the forward of nodes [from, to) in creation order. AG_ERR when an op failed:
 * the message is in g->err. */
int ag_forward(ag_graph *g, int from, int to);
void ag_backward(ag_graph *g, const ag_bwplan *p);

/* The op table (runtime/ops/table.c). */
typedef struct ag_op_def {
    const char *name;
    int min_src, max_src;
    unsigned flags;
    /* Sets n->shape, n->batched and n->aux_numel from the sources; on a mismatch,
     * writes a message located at n->loc and returns AG_ERR. */
    int (*infer)(ag_node *n, ag_error *err);
    void (*forward)(ag_graph *g, ag_node *n);
    /* Accumulates into src[i]->grad for each bit i set in need (with
     * AG_DEF_BW_ASSIGN: writes it, for each bit set in g->bw_assign). NULL for leaves
     * and for ops with AG_DEF_NO_GRAD. */
    void (*backward)(ag_graph *g, ag_node *n, unsigned need);
    /* Element-wise ops: the forward of output elements [lo, hi), ctx the node, which
     * an AG_DEF_EPILOGUE source may run for it (fusion). NULL for the others. */
    void (*range)(void *ctx, int64_t lo, int64_t hi);
} ag_op_def;

enum {
    AG_DEF_NO_GRAD = 1u << 0,    /* no gradient flows to any source */
    AG_DEF_ALIAS_DATA = 1u << 1, /* output data is src 0's data */
    AG_DEF_ALIAS_GRAD = 1u << 2, /* output grad is src 0's grad */
    AG_DEF_BW_ASSIGN = 1u << 3,  /* backward honours g->bw_assign: writes each such
                                  * source's grad outright, or clears it first
                                  * (ag_bw_clear) where it adds into it */
    AG_DEF_EPILOGUE = 1u << 4,   /* forward runs n->epilogue's range on its output */
    AG_DEF_AUX_SCRATCH = 1u << 5, /* aux is scratch of one forward or backward call, which
                                   * nothing reads after it: such nodes share one */
};

extern const ag_op_def *const ag_op_defs[AG_OP_COUNT];
/* AG_OP_COUNT when no op has that name. */
ag_op ag_op_by_name(const char *name);

/* Marks the graph failed with a message at n's location (for forward ops). */
void ag_fail(ag_graph *g, const ag_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* n threads in all (include/aigc/pool.h): sgemms are cut in pieces, each run by the
 * single-threaded backend (include/aigc/blas.h) on one of them, and so are the unary ops and the optimizers'
 * updates. The same n gives the same bits; another n may round sgemms differently. */
void ag_set_threads(int n);

/* C = alpha * op(A) op(B) + beta * C, row-major, op = transpose when trans_*:
 * the backend's sgemm (bk_sgemm), cut along C's longer side over the pool's threads when the pieces are
 * big enough, and a naive loop kept as the reference the tests compare against. */
void ag_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc);
void ag_sgemm_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);
/* ag_sgemm whole on the calling thread, for work already spread over the pool (a chunk
 * may not cut it further). The same bits as ag_sgemm when that leaves it uncut. */
void ag_sgemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                     int ldc);

/* One sgemm's arguments, in ag_sgemm's order, and how to cut it. */
typedef struct ag_gemm {
    int trans_a, trans_b, m, n, k;
    float alpha;
    const float *a;
    int lda;
    const float *b;
    int ldb;
    float beta;
    float *c;
    int ldc;
    int cut_rows;           /* cut C by its rows whatever its shape (else its longer side) */
} ag_gemm;

/* x and then y (NULL: x alone), two sgemms that write disjoint memory, such as a
 * layer's input and weight gradients. With an even thread count they run side by side,
 * each cut in half as many pieces as there are threads: a batch-64 sgemm keeps more of
 * the library's rate whole than cut in two. Otherwise each is cut as ag_sgemm cuts it. */
void ag_sgemm_pair(const ag_gemm *x, const ag_gemm *y);

/* A linear layer's gradients, as its backward makes them, from dy [rows, out], x [rows,
 * in] and W [out, in]: dx = dy W, dW = dy^T x and db = dy's column sums, each made only
 * where its pointer is set, and written where its bit of assign is set (1 dx, 2 dW, 4
 * db), else added into. Where dx is wanted and the forward cuts W's rows among the
 * threads, each chunk makes its rows of dW and db and the share of dx that they give,
 * the shares past the first in scratch, which holds ag_linear_scratch(rows, in, out)
 * floats (fewer: each product as ag_sgemm_pair makes it, the two side by side). */
typedef struct ag_linear_grads {
    int rows, in, out;
    const float *dy, *x, *w;
    float *dx, *dw, *db;
    unsigned assign;
    float *scratch;
    int64_t scratch_floats;
} ag_linear_grads;
void ag_linear_backward(const ag_linear_grads *q);
int64_t ag_linear_scratch(int rows, int in, int out);

#endif
