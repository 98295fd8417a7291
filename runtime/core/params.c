/* params.c — the parameter store: one slab of values, one of gradients. */
#include <stdlib.h>
#include <string.h>

#include "aigc/graph.h"

void ag_params_init(ag_params *ps)
{
    memset(ps, 0, sizeof *ps);
    ar_init(&ps->arena, 0);
}

int ag_params_add(ag_params *ps, const char *name, ag_shape shape, ag_loc loc)
{
    AG_ASSERT(!ps->data);  /* the slab is laid out once, after every parameter is known */
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 16;
        ps->p = ag_xrealloc(ps->p, (size_t)ps->cap * sizeof *ps->p);
    }
    ag_parameter *p = &ps->p[ps->n];
    p->name = ar_strdup(&ps->arena, name);
    p->shape = shape;
    p->offset = ps->total;
    p->data = p->grad = NULL;
    p->loc = loc;
    ps->total += ag_numel(&shape);
    return ps->n++;
}

int ag_params_find(const ag_params *ps, const char *name)
{
    for (int k = 0; k < ps->n; k++)
        if (strcmp(ps->p[k].name, name) == 0) return k;
    return -1;
}

void ag_params_alloc(ag_params *ps)
{
    AG_ASSERT(!ps->data);
    size_t bytes = (size_t)ps->total * sizeof(float);
    ps->data = ar_alloc(&ps->arena, bytes);
    ps->grad = ar_alloc(&ps->arena, bytes);
    for (int k = 0; k < ps->n; k++) {
        ps->p[k].data = ps->data + ps->p[k].offset;
        ps->p[k].grad = ps->grad + ps->p[k].offset;
    }
}

void ag_params_free(ag_params *ps)
{
    free(ps->p);
    ar_free(&ps->arena);
    memset(ps, 0, sizeof *ps);
}
