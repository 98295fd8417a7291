/* table.c — the op table: one entry per ag_op, defined beside its forward and backward
 * in the other files of this folder. */
#include <assert.h>
#include <string.h>

#include "aigc/graph.h"

#define OPS(X)                                                                         \
    X(INPUT, input) X(PARAM, param) X(FULL, full) X(RANDN, randn) X(RAND, rand)        \
    X(BATCH_SIZE, batch_size) X(CYCLE, cycle)                                                      \
    X(FULL_LIKE, full_like) X(RANDN_LIKE, randn_like) X(RAND_LIKE, rand_like)          \
    X(DETACH, detach) X(ADD, add) X(SUB, sub) X(MUL, mul) X(DIV, div)                  \
    X(AFFINE, affine) X(RDIV, rdiv) X(NEG, neg) X(EXP, exp) X(LOG, log)                \
    X(SQRT, sqrt) X(POW, pow) X(ABS, abs) X(CLAMP, clamp) X(RELU, relu)                \
    X(LEAKY_RELU, leaky_relu) X(ELU, elu) X(TANH, tanh) X(SIGMOID, sigmoid)            \
    X(SOFTPLUS, softplus) X(SILU, silu) X(GELU, gelu) X(SUM, sum) X(MEAN, mean)        \
    X(SUM_AXIS, sum_axis) X(MEAN_AXIS, mean_axis) X(RESHAPE, reshape)                  \
    X(CONCAT, concat) X(SLICE, slice) X(ROW_PART, row_part) X(GATHER, gather) X(ONE_HOT, one_hot) X(SOFTMAX, softmax)            \
    X(LOG_SOFTMAX, log_softmax) X(MATMUL, matmul) X(LINEAR, linear) X(BCE, bce)        \
    X(BCE_LOGITS, bce_with_logits) X(MSE, mse) X(L1, l1)                               \
    X(CROSS_ENTROPY, cross_entropy) X(KL_NORMAL, kl_normal) X(HINGE, hinge)             \
    X(WASSERSTEIN, wasserstein) X(DROPOUT, dropout)                                    \
    X(CONV2D, conv2d) X(CONV_TRANSPOSE2D, conv_transpose2d) X(AVG_POOL2D, avg_pool2d)  \
    X(UPSAMPLE_NEAREST2D, upsample_nearest2d)         \
    X(LAYER_NORM, layer_norm) X(GROUP_NORM, group_norm) X(BATCH_NORM, batch_norm)     \
    X(EMBEDDING, embedding) X(CAUSAL_ATTENTION, causal_attention)                      \
    X(TIMESTEP_EMBEDDING, timestep_embedding) X(MASKED_LINEAR, masked_linear) \
    X(SPECTRAL_NORM, spectral_norm) \
    X(INTERPOLATE, interpolate) X(RANDINT, randint) X(TABLE_AT, table_at) \
    X(THRESHOLD, threshold) X(BERNOULLI, bernoulli) \
    X(CATEGORICAL, categorical)

#define DECLARE(E, name) extern const ag_op_def ag_def_##name;
OPS(DECLARE)
#undef DECLARE

#define ENTRY(E, name) [AG_OP_##E] = &ag_def_##name,
const ag_op_def *const ag_op_defs[AG_OP_COUNT] = {OPS(ENTRY)};
#undef ENTRY

#define ONE(E, name) +1
static_assert(0 OPS(ONE) == AG_OP_COUNT, "every ag_op has exactly one table entry");
#undef ONE

ag_op ag_op_by_name(const char *name)
{
    for (int op = 0; op < AG_OP_COUNT; op++)
        if (strcmp(ag_op_defs[op]->name, name) == 0) return (ag_op)op;
    return AG_OP_COUNT;
}
