/* shape.c — shape constructors and printing. */
#include <stdio.h>

#include "aigc/graph.h"

ag_shape ag_shape0(void) { return (ag_shape){0, {0}}; }
ag_shape ag_shape1(int d0) { return (ag_shape){1, {d0}}; }
ag_shape ag_shape2(int d0, int d1) { return (ag_shape){2, {d0, d1}}; }
ag_shape ag_shape3(int d0, int d1, int d2) { return (ag_shape){3, {d0, d1, d2}}; }
ag_shape ag_shape4(int d0, int d1, int d2, int d3) { return (ag_shape){4, {d0, d1, d2, d3}}; }

int64_t ag_numel(const ag_shape *s)
{
    int64_t n = 1;
    for (int k = 0; k < s->ndim; k++) n *= s->d[k];
    return n;
}

int ag_shape_eq(const ag_shape *a, const ag_shape *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->d[k] != b->d[k]) return 0;
    return 1;
}

char *ag_shape_str(const ag_shape *s, int batched, char *buf, size_t len)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, len - k, "[");
    for (int j = 0; j < s->ndim && k < len; j++) {
        if (j == 0 && batched)
            k += (size_t)snprintf(buf + k, len - k, "B");
        else
            k += (size_t)snprintf(buf + k, len - k, "%s%d", j ? ", " : "", s->d[j]);
    }
    if (k < len) snprintf(buf + k, len - k, "]");
    return buf;
}
