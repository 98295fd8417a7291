/* graph.c — building, planning and running a static graph; backward plans. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/graph.h"
#include "aigc/pool.h"

/* ---------------------------------------------------------------- building -- */

void ag_graph_init(ag_graph *g, ag_params *ps, rng *r)
{
    memset(g, 0, sizeof *g);
    ar_init(&g->arena, 0);
    g->params = ps;
    g->rng = r;
    g->training = 1;
    /* Shapes are first inferred at batch 1; ag_graph_plan checks them again at the
     * largest batch. */
    g->batch = 1;
}

void ag_graph_free(ag_graph *g)
{
    free(g->nodes);
    free(g->param_node);
    ar_free(&g->arena);
    memset(g, 0, sizeof *g);
}

void ag_graph_set_loc(ag_graph *g, ag_loc loc) { g->loc = loc; }

static int is_leaf(const ag_node *n) { return ag_op_defs[n->op]->max_src == 0; }

/* Leaves: a batched leaf's dim 0 is the batch; the op's infer validates the rest. */
static int infer(ag_graph *g, ag_node *n, ag_error *err)
{
    if (is_leaf(n) && n->batched && n->shape.ndim > 0) n->shape.d[0] = g->batch;
    const ag_op_def *def = ag_op_defs[n->op];
    return def->infer ? def->infer(n, err) : AG_OK;
}

/* A node stamped with the graph's place and the op's parameters, not yet added. */
static ag_node *make_node(ag_graph *g, ag_op op, const float *f, const int *ip)
{
    AG_ASSERT(!g->planned);
    AG_ASSERT(op >= 0 && op < AG_OP_COUNT);
    ag_node *n = ar_alloc(&g->arena, sizeof *n);
    n->op = op;
    n->id = g->n;
    n->loc = g->loc;
    if (f) memcpy(n->f, f, sizeof n->f);
    if (ip) memcpy(n->i, ip, sizeof n->i);
    return n;
}

/* Infers n's shape and appends it in execution order; NULL (the message in g->err)
 * when the shapes do not fit. */
static ag_node *add_node(ag_graph *g, ag_node *n)
{
    if (infer(g, n, &g->err) != AG_OK) return NULL;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->nodes = ag_xrealloc(g->nodes, (size_t)g->cap * sizeof *g->nodes);
    }
    g->nodes[g->n++] = n;
    return n;
}

ag_node *ag_new(ag_graph *g, ag_op op, int nsrc, ag_node *const *src, const float *f,
                const int *ip)
{
    AG_ASSERT(op >= 0 && op < AG_OP_COUNT);
    const ag_op_def *def = ag_op_defs[op];
    AG_ASSERT(nsrc >= def->min_src && nsrc <= def->max_src);
    for (int k = 0; k < nsrc; k++)
        if (!src[k]) return NULL;  /* an earlier builder failed and said why */
    ag_node *n = make_node(g, op, f, ip);
    n->nsrc = nsrc;
    for (int k = 0; k < nsrc; k++) {
        n->src[k] = src[k];
        n->batched |= src[k]->batched;
    }
    return add_node(g, n);
}

ag_node *ag_leaf(ag_graph *g, ag_op op, ag_shape shape, int batched, const float *f,
                 const int *ip)
{
    ag_node *n = make_node(g, op, f, ip);
    n->shape = shape;
    n->batched = batched && shape.ndim > 0;
    return add_node(g, n);
}

ag_node *ag_param(ag_graph *g, int index)
{
    AG_ASSERT(index >= 0 && index < g->params->n);
    /* A model is first built while its parameters are still being declared, so the
     * store can grow under a graph. */
    if (index >= g->nparam_node) {
        int n = g->params->cap;
        g->param_node = ag_xrealloc(g->param_node, (size_t)n * sizeof *g->param_node);
        memset(g->param_node + g->nparam_node, 0, (size_t)(n - g->nparam_node) * sizeof *g->param_node);
        g->nparam_node = n;
    }
    /* One node per parameter and graph, however many times a model is called: the
     * gradients of all the calls meet in it. */
    if (!g->param_node[index]) {
        const ag_parameter *p = &g->params->p[index];
        ag_node *n = ag_leaf(g, AG_OP_PARAM, p->shape, 0, NULL, (int[AG_MAX_IP]){index});
        if (!n) return NULL;
        n->name = p->name;
        g->param_node[index] = n;
    }
    return g->param_node[index];
}

void ag_fail(ag_graph *g, const ag_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ag_verrorf(&g->err, n->loc, fmt, ap);
    va_end(ap);
    g->failed = 1;
}

/* ---------------------------------------------------------------- planning -- */

static int infer_all(ag_graph *g, int batch, ag_error *err)
{
    g->batch = batch;
    for (int k = 0; k < g->n; k++)
        if (infer(g, g->nodes[k], err) != AG_OK) return AG_ERR;
    return AG_OK;
}

static int64_t round_up(int64_t n) { return (n + 15) & ~(int64_t)15; }

void ag_keep(ag_graph *g, ag_node *n)
{
    AG_ASSERT(!g->planned && n->id < g->n && g->nodes[n->id] == n);
    n->kept = 1;
}

void ag_graph_loop(ag_graph *g, int begin, int end)
{
    AG_ASSERT(!g->planned && !g->loop_end && 0 <= begin && begin <= end && end <= g->n);
    g->loop_begin = begin;
    g->loop_end = end;
}

/* An element-wise op on the output of an op that can run it as an epilogue (a linear
 * layer's activation) is run by that op: one per source, the first. */
static void plan_fusion(ag_graph *g)
{
    for (int k = 0; k < g->n; k++) {
        ag_node *n = g->nodes[k], *s = n->nsrc == 1 ? n->src[0] : NULL;
        if (ag_op_defs[n->op]->range && s && (ag_op_defs[s->op]->flags & AG_DEF_EPILOGUE) &&
            !s->epilogue) {
            s->epilogue = n;
            n->fused = 1;
        }
    }
}

/* Every value its own slice of the slab, gradients (with grads) and op memory beside
 * them; the ops whose op memory is scratch of one call share the largest, at the end. */
static int64_t layout_whole(ag_graph *g, int grads, int64_t *data_at, int64_t *grad_at, int64_t *aux_at)
{
    int64_t at = 0, scratch = 0;
    for (int k = 0; k < g->n; k++) {
        const ag_node *n = g->nodes[k];
        unsigned fl = ag_op_defs[n->op]->flags;
        int64_t numel = round_up(ag_numel(&n->shape)), aux = round_up(n->aux_numel);
        if (n->op != AG_OP_PARAM && !(fl & AG_DEF_ALIAS_DATA)) data_at[k] = at, at += numel;
        if (grads && n->op != AG_OP_PARAM && n->has_grad && !(fl & AG_DEF_ALIAS_GRAD)) grad_at[k] = at, at += numel;
        if (fl & AG_DEF_AUX_SCRATCH)
            scratch = aux > scratch ? aux : scratch;
        else if (aux)
            aux_at[k] = at, at += aux;
    }
    for (int k = 0; k < g->n; k++)
        if (ag_op_defs[g->nodes[k]->op]->flags & AG_DEF_AUX_SCRATCH) aux_at[k] = at;
    return at + scratch;
}

/* Free ranges of the slab, in floats, sorted by offset, touching ones merged; the slab
 * grows at its top when none fits. */
typedef struct span {
    int64_t at, len;
} span;

typedef struct free_list {
    span *s;
    int n;
    int64_t top;
} free_list;

/* The smallest free range that fits (the lowest of equal ones), else the top. */
static int64_t take(free_list *f, int64_t len)
{
    int best = -1;
    for (int k = 0; k < f->n; k++)
        if (f->s[k].len >= len && (best < 0 || f->s[k].len < f->s[best].len)) best = k;
    if (best < 0 && f->n && f->s[f->n - 1].at + f->s[f->n - 1].len == f->top) {
        /* The free range at the top grows into the rest. */
        best = f->n - 1;
        f->top += len - f->s[best].len;
        f->s[best].len = len;
    }
    if (best < 0) {
        f->top += len;
        return f->top - len;
    }
    int64_t at = f->s[best].at;
    f->s[best].at += len;
    f->s[best].len -= len;
    if (f->s[best].len == 0) {
        memmove(f->s + best, f->s + best + 1, (size_t)(f->n - best - 1) * sizeof *f->s);
        f->n--;
    }
    return at;
}

static void give_back(free_list *f, int64_t at, int64_t len)
{
    if (len == 0) return;
    int k = 0;
    while (k < f->n && f->s[k].at < at) k++;
    int joins_prev = k > 0 && f->s[k - 1].at + f->s[k - 1].len == at;
    int joins_next = k < f->n && at + len == f->s[k].at;
    if (joins_prev && joins_next) {
        f->s[k - 1].len += len + f->s[k].len;
        memmove(f->s + k, f->s + k + 1, (size_t)(f->n - k - 1) * sizeof *f->s);
        f->n--;
    } else if (joins_prev) {
        f->s[k - 1].len += len;
    } else if (joins_next) {
        f->s[k].at = at;
        f->s[k].len += len;
    } else {
        memmove(f->s + k + 1, f->s + k, (size_t)(f->n - k) * sizeof *f->s);
        f->s[k] = (span){at, len};
        f->n++;
    }
}

/* Which part of a loop's run node position k is in: before the range, in it, after. */
static int loop_part(const ag_graph *g, int k)
{
    if (!g->loop_end) return 0;
    return k < g->loop_begin ? 0 : k < g->loop_end ? 1 : 2;
}

/* Buffers shared by lifetime (a forward-only graph). A node runs at pos: its own place,
 * or for a fused node its source's, where its values are made. Its buffer is taken
 * there and given back after the last node reading it has run; a node's own sources
 * are still held while it runs, so no op writes over what it reads, and its aux (no
 * forward reads another's, nor its own from an earlier run) lives for its run alone.
 * Kept whole, taken once and never given back: what the caller writes (inputs, and any
 * other leaf without a forward), what it reads (ag_keep), and what is read across an
 * edge of the loop, which does not run again for each read. A loop's value read after
 * it is taken where no other value was, as zeros: a strip's first frame reads it
 * before the first pass. An alias's readers hold its source's buffer. */
static int64_t layout_reuse(ag_graph *g, int64_t *data_at, int64_t *aux_at)
{
    int n = g->n;
    int *pos = ag_xmalloc((size_t)n * 4 * sizeof *pos), *last = pos + n, *owner = pos + 2 * n,
        *next_dying = pos + 3 * n;
    char *whole = ag_xcalloc((size_t)n, 2), *fresh = whole + n;
    for (int k = 0; k < n; k++) {
        const ag_node *x = g->nodes[k];
        const ag_op_def *def = ag_op_defs[x->op];
        pos[k] = x->fused ? pos[x->src[0]->id] : k;
        last[k] = pos[k];
        owner[k] = (def->flags & AG_DEF_ALIAS_DATA) ? owner[x->src[0]->id] : k;
        whole[k] = x->kept || (x->op != AG_OP_PARAM && !(def->flags & AG_DEF_ALIAS_DATA) && !def->forward);
        for (int s = 0; s < x->nsrc; s++) {
            int i = x->src[s]->id;
            if (pos[k] > last[i]) last[i] = pos[k];
            if (loop_part(g, pos[k]) != loop_part(g, pos[i])) whole[i] = 1;
            if (loop_part(g, pos[k]) == 2 && loop_part(g, pos[i]) == 1) fresh[i] = 1;
        }
    }
    /* Aliases come after their sources: one pass back gives each owner all of its. */
    for (int k = n - 1; k >= 0; k--)
        if (owner[k] != k) {
            int o = owner[k];
            if (last[k] > last[o]) last[o] = last[k];
            whole[o] |= whole[k];
            fresh[o] |= fresh[k];
        }
    /* The owners dying at each position, as lists through next_dying. */
    int *dying = ag_xmalloc((size_t)n * sizeof *dying);
    for (int k = 0; k < n; k++) dying[k] = -1;
    for (int k = 0; k < n; k++)
        if (owner[k] == k && g->nodes[k]->op != AG_OP_PARAM && !whole[k]) {
            next_dying[k] = dying[last[k]];
            dying[last[k]] = k;
        }

    free_list f = {ag_xmalloc((size_t)(2 * n + 1) * sizeof *f.s), 0, 0};
    for (int t = 0; t < n; t++) {
        /* Made at t: node t, unless an epilogue runs it earlier, and its epilogue. */
        ag_node *made[2] = {g->nodes[t]->fused ? NULL : g->nodes[t], g->nodes[t]->epilogue};
        for (int j = 0; j < 2; j++) {
            const ag_node *x = made[j];
            if (!x) continue;
            int64_t len = round_up(ag_numel(&x->shape));
            if (x->op != AG_OP_PARAM && owner[x->id] == x->id)
                data_at[x->id] = fresh[x->id] ? (f.top += len) - len : take(&f, len);
            if (x->aux_numel) aux_at[x->id] = take(&f, round_up(x->aux_numel));
        }
        for (int j = 0; j < 2; j++)
            if (made[j] && made[j]->aux_numel) give_back(&f, aux_at[made[j]->id], round_up(made[j]->aux_numel));
        for (int k = dying[t]; k >= 0; k = next_dying[k])
            give_back(&f, data_at[k], round_up(ag_numel(&g->nodes[k]->shape)));
    }
    free(f.s);
    free(dying);
    free(whole);
    free(pos);
    return f.top;
}

/* The node whose grad buffer node k's is: its own, or through aliased grads its
 * source's. */
static void grad_owners(const ag_graph *g, int *owner)
{
    for (int k = 0; k < g->n; k++) {
        const ag_node *x = g->nodes[k];
        owner[k] = (ag_op_defs[x->op]->flags & AG_DEF_ALIAS_GRAD) ? owner[x->src[0]->id] : k;
    }
}

/* Node o's grad buffer from f, once per pass; parameters' are their own slab. */
static void take_grad(const ag_graph *g, free_list *f, int o, int64_t *at, char *taken)
{
    if (taken[o] || g->nodes[o]->op == AG_OP_PARAM) return;
    at[o] = take(f, round_up(ag_numel(&g->nodes[o]->shape)));
    taken[o] = 1;
}

/* Plan p's gradients shared by lifetime, from offset base (at and taken: scratch per
 * node). An owner's buffer is taken before the first step that writes it (the loss's
 * before the pass) and given back after its own step, which reads it last: its aliases
 * were made after it, so their steps come before. Taking before giving back keeps a
 * step's sources off its own grad. Returns the region's size. */
static int64_t layout_grads(ag_graph *g, ag_bwplan *p, const int *owner, int64_t base,
                            int64_t *at, char *taken)
{
    free_list f = {ag_xmalloc((size_t)(2 * g->n + 1) * sizeof *f.s), 0, 0};
    memset(taken, 0, (size_t)g->n);
    take_grad(g, &f, owner[p->loss->id], at, taken);
    for (int t = 0; t < p->nsteps; t++) {
        const ag_node *n = p->steps[t].node;
        for (int s = 0; s < n->nsrc; s++)
            if (p->steps[t].need >> s & 1u) take_grad(g, &f, owner[n->src[s]->id], at, taken);
        if (owner[n->id] == n->id) give_back(&f, at[n->id], round_up(ag_numel(&n->shape)));
    }
    p->ngrads = 0;
    for (int k = 0; k < g->n; k++) p->ngrads += taken[owner[k]];
    p->grads = ar_alloc(&g->arena, (size_t)p->ngrads * sizeof *p->grads);
    p->grad_at = ar_alloc(&g->arena, (size_t)p->ngrads * sizeof *p->grad_at);
    for (int k = 0, j = 0; k < g->n; k++)
        if (taken[owner[k]]) {
            p->grads[j] = g->nodes[k];
            p->grad_at[j++] = base + at[owner[k]];
        }
    free(f.s);
    return p->grad_floats = f.top;
}

int ag_graph_plan(ag_graph *g, int max_batch, ag_error *err)
{
    AG_ASSERT(!g->planned && max_batch >= 1);
    AG_ASSERT(g->params->data || g->params->n == 0);  /* parameters are laid out first */
    /* Shapes that fit at one batch size can clash at another (a batched [B, 3] added
     * to a fixed [64, 3]): check the smallest and the largest batch. */
    if (infer_all(g, 1, err) != AG_OK || infer_all(g, max_batch, err) != AG_OK)
        return AG_ERR;
    g->max_batch = max_batch;

    /* An aliased gradient is its source's gradient: the source must have one. */
    for (int k = g->n - 1; k >= 0; k--) {
        ag_node *n = g->nodes[k];
        if (n->has_grad && (ag_op_defs[n->op]->flags & AG_DEF_ALIAS_GRAD))
            n->src[0]->has_grad = 1;
    }
    /* Fusion first: a fused node's values are made where its source runs. */
    plan_fusion(g);

    int64_t *data_at = ag_xmalloc((size_t)(3 * g->n + 1) * sizeof *data_at);
    int64_t *grad_at = data_at + g->n, *aux_at = grad_at + g->n;
    int64_t total;
    if (g->reuse && !g->plans) {
        total = layout_reuse(g, data_at, aux_at);
    } else {
        total = layout_whole(g, !g->reuse, data_at, grad_at, aux_at);
        if (g->reuse) {
            /* The passes run one at a time: each lays out its own from the same base. */
            int *owner = ag_xmalloc((size_t)g->n * sizeof *owner);
            char *taken = ag_xmalloc((size_t)g->n);
            grad_owners(g, owner);
            int64_t region = 0;
            for (ag_bwplan *p = g->plans; p; p = p->next) {
                int64_t len = layout_grads(g, p, owner, total, grad_at, taken);
                region = len > region ? len : region;
            }
            total += region;
            free(taken);
            free(owner);
        }
    }
    /* Refused before anything is allocated: a spec error, not an out-of-memory exit. */
    if (g->max_bytes && total * (int64_t)sizeof(float) > (g->max_bytes > 0 ? g->max_bytes : 1)) {
        free(data_at);
        return ag_errorf(err, (ag_loc){0}, "the graph needs %lld MB at batch %d, more than the %lld MB left under the memory limit (--max-memory)",
                         (long long)(total * (int64_t)sizeof(float) >> 20), max_batch, (long long)(g->max_bytes >> 20));
    }
    float *slab = total ? ar_alloc(&g->arena, (size_t)total * sizeof(float)) : NULL;
    g->slab = slab;
    g->slab_floats = total;

    for (int k = 0; k < g->n; k++) {
        ag_node *n = g->nodes[k];
        unsigned fl = ag_op_defs[n->op]->flags;
        if (n->op == AG_OP_PARAM) {
            const ag_parameter *p = &g->params->p[n->i[0]];
            n->data = p->data;
            n->grad = p->grad;
        } else {
            n->data = (fl & AG_DEF_ALIAS_DATA) ? n->src[0]->data : slab + data_at[k];
            /* With reuse, ag_backward points a non-parameter's grad at its pass's buffer. */
            if (n->has_grad && (fl & AG_DEF_ALIAS_GRAD)) n->grad = n->src[0]->grad;
            else if (n->has_grad && !g->reuse) n->grad = slab + grad_at[k];
        }
        if (n->aux_numel) n->aux = slab + aux_at[k];
        n->aux_cap = n->aux_numel;
    }
    free(data_at);
    g->planned = 1;
    return AG_OK;
}

int ag_graph_copy(ag_graph *dst, const ag_graph *src, rng *r, int64_t max_bytes, ag_error *err)
{
    AG_ASSERT(src->planned);
    ag_graph_init(dst, src->params, r);
    dst->max_bytes = max_bytes;
    dst->nodes = ag_xmalloc((size_t)(src->n ? src->n : 1) * sizeof *dst->nodes);
    for (int k = 0; k < src->n; k++) {
        ag_node *n = ar_alloc(&dst->arena, sizeof *n);
        *n = *src->nodes[k];
        for (int s = 0; s < n->nsrc; s++) n->src[s] = dst->nodes[n->src[s]->id];
        /* Planned afresh, without gradients: the copy runs forward only. */
        n->data = n->grad = n->aux = NULL;
        n->has_grad = 0;
        n->epilogue = NULL;
        n->fused = 0;
        dst->nodes[k] = n;
    }
    dst->n = dst->cap = src->n;
    dst->reuse = 1;
    dst->loop_begin = src->loop_begin;
    dst->loop_end = src->loop_end;
    if (ag_graph_plan(dst, src->max_batch, err)) {
        ag_graph_free(dst);
        return AG_ERR;
    }
    /* The inputs' values: constant tables are written once, after planning. */
    for (int k = 0; k < src->n; k++)
        if (src->nodes[k]->op == AG_OP_INPUT)
            memcpy(dst->nodes[k]->data, src->nodes[k]->data,
                   (size_t)ag_numel(&src->nodes[k]->shape) * sizeof(float));
    dst->training = src->training;
    return AG_OK;
}

void ag_graph_set_batch(ag_graph *g, int batch)
{
    AG_ASSERT(g->planned && batch >= 1 && batch <= g->max_batch);
    g->shard_lo = 0;
    g->global_batch = batch;
    if (batch == g->batch) return;
    ag_error err;
    if (infer_all(g, batch, &err) != AG_OK) ag_assert_fail(__FILE__, __LINE__, err.msg);
}

void ag_graph_set_shard(ag_graph *g, int lo, int n, int global)
{
    AG_ASSERT(lo >= 0 && n >= 1 && lo + n <= global);
    ag_graph_set_batch(g, n);
    g->shard_lo = lo;
    g->global_batch = global;
}

int ag_global_batch(const ag_graph *g) { return g->global_batch > g->batch ? g->global_batch : g->batch; }

int64_t ag_mean_count(const ag_graph *g, const ag_node *x, int64_t count)
{
    if (!x->batched || g->global_batch <= g->batch) return count;
    return count / g->batch * g->global_batch;
}

void ag_shard_draws(const ag_graph *g, const ag_node *n, int64_t *before, int64_t *after)
{
    *before = *after = 0;
    if (!n->batched || g->global_batch <= g->batch) return;
    int64_t per = ag_numel(&n->shape) / g->batch;
    *before = per * g->shard_lo;
    *after = per * (g->global_batch - g->shard_lo - g->batch);
}

/* ----------------------------------------------------------------- running -- */

int ag_forward(ag_graph *g, int from, int to)
{
    AG_ASSERT(g->planned && from >= 0 && to <= g->n);
    g->failed = 0;  /* each run starts clean: a failure is reported once, by its caller */
    for (int k = from; k < to; k++) {
        ag_node *n = g->nodes[k];
        void (*fwd)(ag_graph *, ag_node *) = ag_op_defs[n->op]->forward;
        /* A fused node was made with its source, which comes first in the graph and,
         * not being a leaf, is never changed from outside between the two. */
        if (fwd && !n->fused) fwd(g, n);
        if (g->failed) return AG_ERR;
    }
    return AG_OK;
}

ag_bwplan *ag_backward_plan(ag_graph *g, ag_node *loss, const int *params, int nparams,
                            ag_error *err)
{
    AG_ASSERT(!g->planned);
    char buf[64];
    if (ag_numel(&loss->shape) != 1 || loss->batched)
        return ag_errorf(err, loss->loc, "a loss must be a single number, this one has shape %s",
                         ag_shape_str(&loss->shape, loss->batched, buf, sizeof buf)),
               NULL;

    /* dep: depends on a requested parameter through differentiable edges.
     * anc: the loss depends on it through differentiable edges. */
    char *dep = ag_xcalloc((size_t)g->n, 2);
    char *anc = dep + g->n;
    for (int k = 0; k < nparams; k++) {
        AG_ASSERT(params[k] >= 0 && params[k] < g->params->n);
        if (params[k] < g->nparam_node && g->param_node[params[k]]) dep[g->param_node[params[k]]->id] = 1;
    }
    for (int k = 0; k < g->n; k++) {
        const ag_node *n = g->nodes[k];
        if (ag_op_defs[n->op]->flags & AG_DEF_NO_GRAD) continue;
        for (int s = 0; s < n->nsrc; s++) dep[k] |= dep[n->src[s]->id];
    }
    if (!dep[loss->id]) {
        free(dep);
        return ag_errorf(err, loss->loc, "this loss does not depend on any of the parameters it should update"),
               NULL;
    }
    anc[loss->id] = 1;
    int nsteps = 0, nplan = 0;
    for (int k = loss->id; k >= 0; k--) {
        ag_node *n = g->nodes[k];
        if (!anc[k] || !dep[k]) continue;
        nplan++;
        n->has_grad = 1;
        if (is_leaf(n)) continue;
        nsteps++;
        for (int s = 0; s < n->nsrc; s++)
            if (dep[n->src[s]->id]) anc[n->src[s]->id] = 1;
    }

    ag_bwplan *p = ar_alloc(&g->arena, sizeof *p);
    p->loss = loss;
    p->steps = ar_alloc(&g->arena, (size_t)nsteps * sizeof *p->steps);
    for (int k = loss->id; k >= 0; k--) {
        ag_node *n = g->nodes[k];
        if (!anc[k] || !dep[k] || is_leaf(n)) continue;
        unsigned need = 0;
        for (int s = 0; s < n->nsrc; s++)
            if (dep[n->src[s]->id]) need |= 1u << s;
        p->steps[p->nsteps++] = (ag_bstep){.node = n, .need = need};
    }

    /* The first call to reach a grad buffer may write it instead of adding to it, which
     * saves zeroing it: when its op writes every element once (AG_DEF_BW_ASSIGN), the
     * source is not another of its needed sources too, and the buffer is not shared
     * with another node through an aliased grad (reshape). Otherwise that call's step
     * clears the buffer first: not the pass's start, as with g->reuse the buffer holds
     * another gradient until then. The loss's buffer is the pass's to set. */
    int *owner = ag_xmalloc((size_t)g->n * sizeof *owner);
    char *shared = ag_xcalloc((size_t)g->n, 2), *reached = shared + g->n;
    grad_owners(g, owner);
    for (int k = 0; k < g->n; k++)
        if (owner[k] != k) shared[k] = shared[owner[k]] = 1;
    reached[owner[loss->id]] = 1;
    p->zero = ar_alloc(&g->arena, (size_t)nplan * sizeof *p->zero);
    for (int k = 0; k < p->nsteps; k++) {
        ag_bstep *st = &p->steps[k];
        int assigns = (ag_op_defs[st->node->op]->flags & AG_DEF_BW_ASSIGN) != 0;
        for (int s = 0; s < st->node->nsrc; s++) {
            const ag_node *src = st->node->src[s];
            if (!(st->need >> s & 1u) || reached[owner[src->id]]) continue;
            reached[owner[src->id]] = 1;
            int uses = 0;
            for (int t = 0; t < st->node->nsrc; t++)
                uses += (st->need >> t & 1u) && st->node->src[t] == src;
            if (assigns && uses == 1 && !shared[src->id]) {
                st->assign |= 1u << s;
            } else {
                p->zero[p->nzero++] = g->nodes[owner[src->id]];
                st->nzero++;
            }
        }
    }
    p->next = g->plans;
    g->plans = p;
    free(shared);
    free(owner);
    free(dep);
    return p;
}

void ag_backward(ag_graph *g, const ag_bwplan *p)
{
    AG_ASSERT(g->planned);
    for (int k = 0; k < p->ngrads; k++) p->grads[k]->grad = g->slab + p->grad_at[k];
    p->loss->grad[0] = 1.0f;
    ag_node **zero = p->zero;
    for (int k = 0; k < p->nsteps; k++) {
        const ag_bstep *s = &p->steps[k];
        for (int j = 0; j < s->nzero; j++, zero++)
            memset((*zero)->grad, 0, (size_t)ag_numel(&(*zero)->shape) * sizeof(float));
        void (*bwd)(ag_graph *, ag_node *, unsigned) = ag_op_defs[s->node->op]->backward;
        g->bw_assign = s->assign;
        if (bwd) bwd(g, s->node, s->need);
    }
    g->bw_assign = 0;
}

unsigned ag_bw_clear(ag_graph *g, ag_node *n, unsigned which)
{
    unsigned clear = g->bw_assign & which;
    for (int s = 0; s < n->nsrc; s++)
        if (clear >> s & 1u)
            memset(n->src[s]->grad, 0, (size_t)ag_numel(&n->src[s]->shape) * sizeof(float));
    return g->bw_assign & ~clear;
}

void ag_set_threads(int n)
{
    /* The pool splits the sgemms itself, each piece on single-threaded OpenBLAS
     * (docs/performance.md, Threads). */
    openblas_set_num_threads(1);
    tp_set_threads(n);
}
