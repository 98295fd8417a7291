/*
 * fixture.h — a graph with no parameters for forward-only checks of ops, shared by the
 * op tests. It lives where it was declared: the graph points at the fixture's generator.
 */
#ifndef AIGC_FIXTURE_H
#define AIGC_FIXTURE_H

#include "aigc/graph.h"
#include "tap.h"

typedef struct fixture {
    rng r;
    ag_params ps;
    ag_graph g;
} fixture;

static inline void fx_init(fixture *f, uint64_t seed)
{
    rng_seed(&f->r, seed);
    ag_params_init(&f->ps);
    ag_params_alloc(&f->ps);
    ag_graph_init(&f->g, &f->ps, &f->r);
}

/* Plans for batch 1; a failed build or plan is one failed check with its message. */
static inline int fx_plan(fixture *f, ag_node *out)
{
    ag_error err;
    if (!out) return ok(0, "graph builds: %s", f->g.err.msg);
    if (ag_graph_plan(&f->g, 1, &err) != AG_OK) return ok(0, "graph plans: %s", err.msg);
    return 1;
}

static inline void fx_free(fixture *f)
{
    ag_graph_free(&f->g);
    ag_params_free(&f->ps);
}

#endif
