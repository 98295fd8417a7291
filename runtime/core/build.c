/* build.c — the named builders: thin wrappers that fill an op's parameters. */
#include <math.h>

#include "aigc/graph.h"

#define F(...) ((const float[AG_MAX_FP]){__VA_ARGS__})
#define I(...) ((const int[AG_MAX_IP]){__VA_ARGS__})

static ag_node *new1(ag_graph *g, ag_op op, ag_node *x, const float *f, const int *ip)
{
    return ag_new(g, op, 1, (ag_node *const[]){x}, f, ip);
}

static ag_node *new2(ag_graph *g, ag_op op, ag_node *a, ag_node *b, const float *f,
                     const int *ip)
{
    return ag_new(g, op, 2, (ag_node *const[]){a, b}, f, ip);
}

ag_node *ag_input(ag_graph *g, const char *name, ag_shape shape, int batched)
{
    ag_node *n = ag_leaf(g, AG_OP_INPUT, shape, batched, NULL, NULL);
    if (n) n->name = name;
    return n;
}

ag_node *ag_full(ag_graph *g, ag_shape shape, int batched, float value)
{
    return ag_leaf(g, AG_OP_FULL, shape, batched, F(value), NULL);
}

ag_node *ag_randn(ag_graph *g, ag_shape shape, int batched, float mean, float std)
{
    return ag_leaf(g, AG_OP_RANDN, shape, batched, F(mean, std), NULL);
}

ag_node *ag_rand(ag_graph *g, ag_shape shape, int batched, float lo, float hi)
{
    return ag_leaf(g, AG_OP_RAND, shape, batched, F(lo, hi), NULL);
}

ag_node *ag_full_like(ag_graph *g, ag_node *x, float value)
{
    return new1(g, AG_OP_FULL_LIKE, x, F(value), NULL);
}

ag_node *ag_randn_like(ag_graph *g, ag_node *x) { return new1(g, AG_OP_RANDN_LIKE, x, NULL, NULL); }
ag_node *ag_rand_like(ag_graph *g, ag_node *x) { return new1(g, AG_OP_RAND_LIKE, x, NULL, NULL); }
ag_node *ag_detach(ag_graph *g, ag_node *x) { return new1(g, AG_OP_DETACH, x, NULL, NULL); }

ag_node *ag_unary(ag_graph *g, ag_op op, ag_node *x) { return new1(g, op, x, NULL, NULL); }

ag_node *ag_binary(ag_graph *g, ag_op op, ag_node *a, ag_node *b)
{
    return new2(g, op, a, b, NULL, NULL);
}

ag_node *ag_affine(ag_graph *g, ag_node *x, float scale, float shift)
{
    return new1(g, AG_OP_AFFINE, x, F(scale, shift), NULL);
}

ag_node *ag_rdiv(ag_graph *g, float num, ag_node *x) { return new1(g, AG_OP_RDIV, x, F(num), NULL); }
ag_node *ag_pow(ag_graph *g, ag_node *x, float p) { return new1(g, AG_OP_POW, x, F(p), NULL); }

ag_node *ag_clamp(ag_graph *g, ag_node *x, float lo, float hi)
{
    return new1(g, AG_OP_CLAMP, x, F(lo, hi), NULL);
}

ag_node *ag_leaky_relu(ag_graph *g, ag_node *x, float slope)
{
    return new1(g, AG_OP_LEAKY_RELU, x, F(slope), NULL);
}

ag_node *ag_elu(ag_graph *g, ag_node *x, float alpha) { return new1(g, AG_OP_ELU, x, F(alpha), NULL); }

ag_node *ag_softplus(ag_graph *g, ag_node *x, float beta, float threshold)
{
    return new1(g, AG_OP_SOFTPLUS, x, F(beta, threshold), NULL);
}

ag_node *ag_sum(ag_graph *g, ag_node *x) { return new1(g, AG_OP_SUM, x, NULL, NULL); }
ag_node *ag_mean(ag_graph *g, ag_node *x) { return new1(g, AG_OP_MEAN, x, NULL, NULL); }

ag_node *ag_sum_axis(ag_graph *g, ag_node *x, int axis, int keepdim)
{
    return new1(g, AG_OP_SUM_AXIS, x, NULL, I(axis, keepdim));
}

ag_node *ag_mean_axis(ag_graph *g, ag_node *x, int axis, int keepdim)
{
    return new1(g, AG_OP_MEAN_AXIS, x, NULL, I(axis, keepdim));
}

ag_node *ag_reshape(ag_graph *g, ag_node *x, int ndim, const int *dims)
{
    AG_ASSERT(ndim >= 0 && ndim <= AG_MAX_DIMS);
    int ip[AG_MAX_IP] = {0};
    for (int k = 0; k < ndim; k++) ip[k] = dims[k];
    ip[4] = ndim;
    return new1(g, AG_OP_RESHAPE, x, NULL, ip);
}

ag_node *ag_flatten(ag_graph *g, ag_node *x)
{
    if (!x) return NULL;
    return ag_reshape(g, x, 2, (const int[]){-1, x->shape.ndim ? (int)(ag_numel(&x->shape) / x->shape.d[0]) : 1});
}

ag_node *ag_concat(ag_graph *g, int n, ag_node *const *xs, int axis)
{
    return ag_new(g, AG_OP_CONCAT, n, xs, NULL, I(axis));
}

ag_node *ag_slice(ag_graph *g, ag_node *x, int axis, int start, int end)
{
    return new1(g, AG_OP_SLICE, x, NULL, I(axis, start, end));
}

ag_node *ag_gather(ag_graph *g, ag_node *x, int axis, ag_node *index)
{
    return new2(g, AG_OP_GATHER, x, index, NULL, I(axis));
}

ag_node *ag_one_hot(ag_graph *g, ag_node *index, int classes)
{
    return new1(g, AG_OP_ONE_HOT, index, NULL, I(classes));
}

ag_node *ag_batch_size(ag_graph *g) { return ag_leaf(g, AG_OP_BATCH_SIZE, ag_shape0(), 0, NULL, NULL); }

ag_node *ag_cycle(ag_graph *g, int n, int period)
{
    return ag_leaf(g, AG_OP_CYCLE, ag_shape1(n), 0, NULL, I(period));
}

ag_node *ag_softmax(ag_graph *g, ag_node *x, int axis) { return new1(g, AG_OP_SOFTMAX, x, NULL, I(axis)); }

ag_node *ag_log_softmax(ag_graph *g, ag_node *x, int axis)
{
    return new1(g, AG_OP_LOG_SOFTMAX, x, NULL, I(axis));
}

ag_node *ag_matmul(ag_graph *g, ag_node *a, ag_node *b, int trans_a, int trans_b)
{
    return new2(g, AG_OP_MATMUL, a, b, NULL, I(trans_a, trans_b));
}

ag_node *ag_linear(ag_graph *g, ag_node *x, ag_node *w, ag_node *b)
{
    if (b) return ag_new(g, AG_OP_LINEAR, 3, (ag_node *const[]){x, w, b}, NULL, NULL);
    return new2(g, AG_OP_LINEAR, x, w, NULL, NULL);
}

ag_node *ag_loss(ag_graph *g, ag_op op, ag_node *a, ag_node *b, ag_reduction red)
{
    return new2(g, op, a, b, NULL, I((int)red));
}

ag_node *ag_dropout(ag_graph *g, ag_node *x, float p) { return new1(g, AG_OP_DROPOUT, x, F(p), NULL); }

ag_node *ag_conv2d(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, int stride, int padding)
{
    int n = b ? 3 : 2;
    return ag_new(g, AG_OP_CONV2D, n, (ag_node *const[]){x, w, b}, NULL,
                  I(stride, stride, padding, padding));
}

ag_node *ag_conv_transpose2d(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, int stride,
                             int padding, int output_padding)
{
    int n = b ? 3 : 2;
    return ag_new(g, AG_OP_CONV_TRANSPOSE2D, n, (ag_node *const[]){x, w, b}, NULL,
                  I(stride, stride, padding, padding, output_padding, output_padding));
}

ag_node *ag_avg_pool2d(ag_graph *g, ag_node *x, int kernel, int stride)
{
    return new1(g, AG_OP_AVG_POOL2D, x, NULL, I(kernel, stride ? stride : kernel));
}

ag_node *ag_upsample_nearest2d(ag_graph *g, ag_node *x, int scale)
{
    return new1(g, AG_OP_UPSAMPLE_NEAREST2D, x, NULL, I(scale));
}

ag_node *ag_layer_norm(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, float eps)
{
    AG_ASSERT(w || !b);
    return ag_new(g, AG_OP_LAYER_NORM, 1 + !!w + !!b, (ag_node *const[]){x, w, b}, F(eps), NULL);
}

ag_node *ag_group_norm(ag_graph *g, ag_node *x, int groups, ag_node *w, ag_node *b, float eps)
{
    AG_ASSERT(w || !b);
    return ag_new(g, AG_OP_GROUP_NORM, 1 + !!w + !!b, (ag_node *const[]){x, w, b}, F(eps),
                  I(groups));
}

ag_node *ag_batch_norm(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, ag_node *running_mean,
                       ag_node *running_var, float eps, float momentum)
{
    return ag_new(g, AG_OP_BATCH_NORM, 5, (ag_node *const[]){x, w, b, running_mean, running_var},
                  F(eps, momentum), NULL);
}

ag_node *ag_embedding(ag_graph *g, ag_node *weight, ag_node *index)
{
    return new2(g, AG_OP_EMBEDDING, weight, index, NULL, NULL);
}

ag_node *ag_causal_attention(ag_graph *g, ag_node *qkv, int heads)
{
    return new1(g, AG_OP_CAUSAL_ATTENTION, qkv, NULL, I(heads));
}

ag_node *ag_timestep_embedding(ag_graph *g, ag_node *t, int dim)
{
    return new1(g, AG_OP_TIMESTEP_EMBEDDING, t, NULL, I(dim));
}

ag_node *ag_masked_linear(ag_graph *g, ag_node *x, ag_node *w, ag_node *mask, ag_node *b)
{
    return ag_new(g, AG_OP_MASKED_LINEAR, b ? 4 : 3, (ag_node *const[]){x, w, mask, b}, NULL,
                  NULL);
}

ag_node *ag_interpolate(ag_graph *g, ag_node *a, ag_node *b, int steps)
{
    return new2(g, AG_OP_INTERPOLATE, a, b, NULL, I(steps));
}

ag_node *ag_randint(ag_graph *g, ag_shape shape, int batched, int high)
{
    return ag_leaf(g, AG_OP_RANDINT, shape, batched, NULL, I(high));
}

ag_node *ag_table_at(ag_graph *g, ag_node *table, ag_node *index, float outside, int rank)
{
    return new2(g, AG_OP_TABLE_AT, table, index, F(outside), I(rank));
}

ag_node *ag_threshold(ag_graph *g, ag_node *x, float t) { return new1(g, AG_OP_THRESHOLD, x, F(t), NULL); }
ag_node *ag_bernoulli(ag_graph *g, ag_node *p) { return new1(g, AG_OP_BERNOULLI, p, NULL, NULL); }
ag_node *ag_categorical(ag_graph *g, ag_node *logits, int top_k)
{
    return new1(g, AG_OP_CATEGORICAL, logits, NULL, I(top_k));
}
