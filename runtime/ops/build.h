/*
 * build.h — what the named builders beside each op share (prefix bd_): parameter
 * arrays written in place, and nodes of one or two sources. Private to runtime/ops.
 */
#ifndef AIGC_OPS_BUILD_H
#define AIGC_OPS_BUILD_H

#include "aigc/graph.h"

#define BD_F(...) ((const float[AG_MAX_FP]){__VA_ARGS__})
#define BD_I(...) ((const int[AG_MAX_IP]){__VA_ARGS__})

static inline ag_node *bd_new1(ag_graph *g, ag_op op, ag_node *x, const float *f,
                               const int *ip)
{
    return ag_new(g, op, 1, (ag_node *const[]){x}, f, ip);
}

static inline ag_node *bd_new2(ag_graph *g, ag_op op, ag_node *a, ag_node *b,
                               const float *f, const int *ip)
{
    return ag_new(g, op, 2, (ag_node *const[]){a, b}, f, ip);
}

#endif
