/* test_pool.c — the thread pool's contract (include/aigc/pool.h): tp_for and
 * tp_for_each run every element once, in chunks that start at multiples of 16 and are
 * no more than they may be, tp_for_each's chunks going to whichever thread is free;
 * tp_for_items and tp_each_item every item once, tp_each_item's to whichever thread is free;
 * tp_self numbers the threads; tp_aside runs its work once, on a worker while the caller
 * goes on, and the next job or a change of thread count waits for it; tp_sum gives the same bits at every thread count; and so
 * do the losses that are built on it, the broadcasting binary ops, forward and
 * backward, on inputs large enough to be cut, and the optimizers' updates, a weight's
 * cut by its rows. */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aigc/graph.h"
#include "aigc/optim.h"
#include "aigc/pool.h"
#include "tap.h"
#include "threads.h"

enum { MAX_N = 1 << 21 };

static unsigned char seen[MAX_N];
static int misaligned;
static _Atomic int chunks;

static void mark(void *ctx, int64_t lo, int64_t hi)
{
    (void)ctx;
    if (lo % 16) misaligned = 1;
    atomic_fetch_add(&chunks, 1);
    for (int64_t k = lo; k < hi; k++) seen[k]++;
}

/* `each` picks tp_for_each, which may cut up to TP_EACH_CHUNKS chunks per thread. */
static void test_for(int each, int threads, int64_t n, int64_t grain)
{
    memset(seen, 0, (size_t)n);
    misaligned = 0;
    chunks = 0;
    (each ? tp_for_each : tp_for)(n, grain, mark, NULL);
    int once = 1;
    for (int64_t k = 0; k < n; k++) once &= seen[k] == 1;
    int64_t most = threads > 1 && each ? TP_EACH_CHUNKS * threads : threads;
    if (n / grain < most) most = n / grain > 1 ? n / grain : 1;
    ok(once && !misaligned && chunks <= most,
       "%s at %d threads, n %lld, grain %lld: each element once, chunks at multiples of 16, "
       "%d of at most %lld", each ? "tp_for_each" : "tp_for", threads, (long long)n,
       (long long)grain, chunks, (long long)most);
}

/* tp_for_each with a worker that stalls in its first chunk (as one that has lost its core
 * to another process would): the caller does not wait for it but runs the other chunks. */
static _Atomic int by_caller;

static void stall_worker(void *ctx, int64_t lo, int64_t hi)
{
    (void)ctx, (void)lo, (void)hi;
    if (tp_self() == 0) {
        atomic_fetch_add(&by_caller, 1);
        nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL); /* time for the worker to wake */
    } else {
        nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
    }
}

static void test_for_each_stall(void)
{
    tp_set_threads(2);
    by_caller = 0;
    tp_for_each(2 * TP_EACH_CHUNKS * 16, 16, stall_worker, NULL);
    ok(by_caller >= 2 * TP_EACH_CHUNKS - 1,
       "tp_for_each at 2 threads, the worker stalled in a chunk: the caller ran %d of %d chunks",
       by_caller, 2 * TP_EACH_CHUNKS);
}

/* tp_for_items: every item once, and each run of items at least the grain long unless
 * it is the whole of n. */
static int64_t shortest;

static void mark_items(void *ctx, int64_t lo, int64_t hi)
{
    (void)ctx;
    if (hi - lo < shortest) shortest = hi - lo;
    for (int64_t k = lo; k < hi; k++) seen[k]++;
}

static void test_for_items(int threads, int64_t n, int64_t grain)
{
    memset(seen, 0, (size_t)n);
    shortest = n;
    tp_for_items(n, grain, mark_items, NULL);
    int once = 1;
    for (int64_t k = 0; k < n; k++) once &= seen[k] == 1;
    ok(once && shortest >= (grain < n ? grain : n),
       "tp_for_items at %d threads, n %lld, grain %lld: each item once, runs of at least the "
       "grain (shortest %lld)", threads, (long long)n, (long long)grain, (long long)shortest);
}

/* tp_each_item: every item once; items claimed one by one, so that with a worker
 * stalled in one, the caller runs all the others (the linear layer's pair of sgemms and
 * then its bias gradient: tp_for_items would give one thread both sgemms). */
static void test_each_item(int threads, int64_t n)
{
    memset(seen, 0, (size_t)n);
    shortest = n;
    tp_each_item(n, mark_items, NULL);
    int once = 1;
    for (int64_t k = 0; k < n; k++) once &= seen[k] == 1;
    ok(once, "tp_each_item at %d threads, n %lld: each item once", threads, (long long)n);
}

static void test_each_item_stall(void)
{
    tp_set_threads(2);
    by_caller = 0;
    tp_each_item(4, stall_worker, NULL);
    ok(by_caller >= 3, "tp_each_item of 4 at 2 threads, the worker stalled in one: the caller ran %d", by_caller);
}

/* A linear layer with a bias, the VAE decoder's last at batch 64: its forward cuts W's
 * rows among the threads, and its backward makes each chunk's rows of dW and db and the
 * share of dx those rows give, added after. The same bits run after run, and the values
 * of one thread to the rounding of sums in another order: within 32 float epsilons of
 * the largest value (dx's elements are sums of 784 products, some near 0 from
 * cancellation, whose error is relative to the products' size, not the sum's). */
static ag_node *build_linear(ag_graph *g, ag_node **in, void *ctx)
{
    (void)ctx;
    return ag_linear(g, in[0], in[1], in[2]);
}

static void test_linear_threads(void)
{
    const ag_shape shapes[] = {ag_shape2(64, 400), ag_shape2(784, 400), ag_shape1(784)};
    int64_t n1, n;
    float *one = th_run(1, shapes, 3, -1, 1, build_linear, NULL, &n1);
    for (int threads = 2; threads <= 4; threads++) {
        ok(th_agree(threads, threads, shapes, 3, -1, 1, build_linear, NULL),
           "linear [64, 400] -> 784 with a bias at %d threads, forward and backward: the same bits twice", threads);
        float *got = th_run(threads, shapes, 3, -1, 1, build_linear, NULL, &n);
        double worst = 0, scale = 1;
        for (int64_t k = 0; one && k < n1; k++) scale = fmax(scale, fabs((double)one[k]));
        for (int64_t k = 0; got && one && k < n && n == n1; k++)
            worst = fmax(worst, fabs((double)got[k] - one[k]) / scale);
        ok(got && one && n == n1 && worst < 32 * FLT_EPSILON,
           "... and the values of one thread (worst difference %.2g of the largest value)", worst);
        free(got);
    }
    free(one);
}

/* Three steps of Adam (and of SGD with momentum) on a weight cut by its rows, a bias
 * and a weight too small to cut, from the same values at each thread count: the
 * parameters and the optimizer's state after them, bit for bit, and those of the large
 * weight's elements as a flat parameter, which is cut by elements instead. */
static float *update_run(int threads, opt_kind kind, int flat, int64_t *n)
{
    tp_set_threads(threads);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_add(&ps, "w", flat ? ag_shape1(400 * 784) : ag_shape2(400, 784), (ag_loc){0});
    ag_params_add(&ps, "b", ag_shape1(400), (ag_loc){0});
    ag_params_add(&ps, "v", ag_shape2(50, 100), (ag_loc){0});
    ag_params_alloc(&ps);
    opt_hyper h = opt_defaults(kind);
    h.momentum = kind == OPT_SGD ? 0.9 : 0;
    h.weight_decay = 1e-2;
    opt_optimizer o;
    ag_error err;
    if (opt_init(&o, kind, &h, &ps, &(opt_group_spec){(int[]){0, 1, 2}, 3, h.lr, h.weight_decay}, 1,
                 (ag_loc){0}, &err)) {
        ag_params_free(&ps);
        return NULL;
    }
    for (int step = 0; step < 3; step++) {
        for (int64_t k = 0; k < ps.total; k++) {
            ps.data[k] = step ? ps.data[k] : sinf((float)k * 0.001f);
            ps.grad[k] = cosf((float)(k + step) * 0.37f) * 0.1f;
        }
        opt_step(&o);
    }
    *n = ps.total + opt_state_floats(&o);
    float *out = malloc((size_t)*n * sizeof *out);
    memcpy(out, ps.data, (size_t)ps.total * sizeof *out);
    memcpy(out + ps.total, o.state, (size_t)opt_state_floats(&o) * sizeof *out);
    opt_free(&o);
    ag_params_free(&ps);
    return out;
}

static void test_update_threads(opt_kind kind)
{
    int64_t n1, n;
    float *one = update_run(1, kind, 0, &n1);
    for (int threads = 2; threads <= 3; threads++) {
        float *got = update_run(threads, kind, 0, &n);
        ok(one && got && n == n1 && !memcmp(one, got, (size_t)n * sizeof *got),
           "%s: 3 steps on a [400, 784] weight, a bias and a [50, 100] weight at %d threads: the bits of one",
           opt_kind_name(kind), threads);
        free(got);
    }
    float *flat = update_run(2, kind, 1, &n);
    ok(one && flat && n == n1 && !memcmp(one, flat, (size_t)n * sizeof *flat),
       "%s: ... and of the [400, 784] weight as a flat [313600] one, cut by elements", opt_kind_name(kind));
    free(flat);
    free(one);
}

/* tp_self: every chunk runs on a thread numbered 0 to threads - 1, and no two chunks
 * that run at the same time share a number (the scratch slot it stands for). */
static _Atomic int in_use[TP_MAX_THREADS];
static _Atomic int self_bad;

static void use_slot(void *ctx, int64_t lo, int64_t hi)
{
    int s = tp_self();
    if (s < 0 || s >= *(const int *)ctx) {
        self_bad = 1;
        return;
    }
    if (atomic_fetch_add(&in_use[s], 1) != 0) self_bad = 1;
    volatile double x = 0;
    for (int64_t k = lo; k < hi; k++) x += (double)k;
    atomic_fetch_sub(&in_use[s], 1);
}

static void test_self(int threads)
{
    self_bad = tp_self() != 0;
    for (int rep = 0; rep < 200; rep++) tp_for(1 << 14, 16, use_slot, &threads);
    ok(!self_bad, "tp_self at %d threads: the caller is 0, each chunk's thread below %d, none "
       "shared by chunks at the same time", threads, threads);
}

/* A job inside a chunk runs whole on the chunk's thread, which sees a pool of one. */
typedef struct nested {
    _Atomic int bad, inner_calls;
} nested;

static void nested_inner(void *ctx, int64_t lo, int64_t hi)
{
    nested *t = ctx;
    if (lo != 0 || hi != 1 << 12) t->bad = 1;
    t->inner_calls++;
}

static void nested_outer(void *ctx, int64_t lo, int64_t hi)
{
    nested *t = ctx;
    for (int64_t k = lo; k < hi; k++) {
        int self = tp_self(), before = t->inner_calls;
        if (tp_threads() != 1) t->bad = 1;
        tp_for(1 << 12, 16, nested_inner, t);
        tp_for_each(1 << 12, 16, nested_inner, t);
        /* At least this thread's two calls (the other chunks' count too). */
        if (tp_self() != self || t->inner_calls < before + 2) t->bad = 1;
    }
}

static void test_nested(int threads)
{
    nested t = {0};
    tp_for_items(threads, 1, nested_outer, &t);
    ok(!t.bad && t.inner_calls == 2 * threads && tp_threads() == threads,
       "tp_for and tp_for_each inside a chunk at %d threads: run whole on the chunk's thread, "
       "which sees tp_threads() 1", threads);
}

static double *values;

static double add_range(void *ctx, int64_t lo, int64_t hi)
{
    (void)ctx;
    double s = 0;
    for (int64_t k = lo; k < hi; k++) s += values[k];
    return s;
}

/* Terms of very different sizes, so that a different order of addition shows in the
 * last bits. */
static void fill_values(int64_t n)
{
    rng r;
    rng_seed(&r, 7);
    for (int64_t k = 0; k < n; k++) {
        float u = rng_uniform(&r);
        values[k] = (u - 0.5) * (k % 7 == 0 ? 1e6 : 1e-3);
    }
}

/* A loss graph: bce (sum) of sigmoid outputs, mse (mean) and cross_entropy (sum) over
 * 4096 rows of 100 classes, each with its input's gradient. */
typedef struct loss_run {
    float bce, mse, ce;
    float *grads;   /* the three inputs' gradients, one after the other */
    int64_t ngrads;
} loss_run;

static loss_run run_losses(int threads)
{
    tp_set_threads(threads);
    enum { N = 3 * 50000, ROWS = 4096, C = 100 };
    ag_params ps;
    ag_params_init(&ps);
    int ip = ag_params_add(&ps, "p", ag_shape1(N), (ag_loc){0});
    int ix = ag_params_add(&ps, "x", ag_shape1(N), (ag_loc){0});
    int il = ag_params_add(&ps, "logits", ag_shape2(ROWS, C), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 3);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *p = ag_param(&g, ip), *x = ag_param(&g, ix), *logits = ag_param(&g, il);
    ag_node *t = ag_input(&g, "t", ag_shape1(N), 0);
    ag_node *cls = ag_input(&g, "cls", ag_shape1(ROWS), 0);
    ag_node *bce = ag_loss(&g, AG_OP_BCE, p, t, AG_RED_SUM);
    ag_node *mse = ag_loss(&g, AG_OP_MSE, x, t, AG_RED_MEAN);
    ag_node *ce = ag_loss(&g, AG_OP_CROSS_ENTROPY, logits, cls, AG_RED_SUM);
    ag_node *total = ag_binary(&g, AG_OP_ADD, ag_binary(&g, AG_OP_ADD, bce, mse), ce);
    ag_error err = {{0}};
    int params[3] = {ip, ix, il};
    ag_bwplan *bw = total ? ag_backward_plan(&g, total, params, 3, &err) : NULL;
    loss_run out = {0};
    if (!ok(bw && ag_graph_plan(&g, 1, &err) == AG_OK, "the loss graph builds at %d threads", threads)) {
        diag("%s%s", g.err.msg, err.msg);
        goto done;
    }
    rng_fill_uniform(&r, p->data, N, 0, 1);
    rng_fill_uniform(&r, t->data, N, 0, 1);
    rng_fill_normal(&r, x->data, N, 0, 1);
    rng_fill_normal(&r, logits->data, ROWS * C, 0, 3);
    for (int k = 0; k < ROWS; k++) cls->data[k] = (float)(k * 37 % C);
    ok(ag_forward(&g, 0, g.n) == AG_OK, "forward at %d threads", threads);
    ag_backward(&g, bw);
    out = (loss_run){bce->data[0], mse->data[0], ce->data[0], NULL, ps.total};
    out.grads = malloc((size_t)ps.total * sizeof(float));
    memcpy(out.grads, ps.grad, (size_t)ps.total * sizeof(float));
done:
    ag_graph_free(&g);
    ag_params_free(&ps);
    return out;
}

/* Broadcasting binary ops, cut over the pool: their outputs and both gradients. The
 * cases: rows that each sum into their own element of b (a per-channel bias on
 * images), b broadcast across rows (run on the caller), one long row cut in pieces,
 * rows that each sum into b's element (div by a column), the same with rows long
 * enough to be cut, which must stay whole, and both sources broadcast across rows. */
typedef struct binary_case {
    ag_op op;
    ag_shape a, b;
} binary_case;

static const binary_case binary_cases[] = {
    {AG_OP_ADD, {4, {16, 32, 28, 28}}, {4, {16, 32, 1, 1}}},
    {AG_OP_MUL, {2, {64, 512}}, {1, {512}}},
    {AG_OP_MUL, {1, {300000}}, {1, {300000}}},
    {AG_OP_DIV, {2, {64, 784}}, {2, {64, 1}}},
    {AG_OP_ADD, {2, {3, 100000}}, {2, {3, 1}}},
    {AG_OP_SUB, {3, {64, 1, 784}}, {3, {1, 10, 784}}},
};

static ag_node *th_binary(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_binary(g, *(const ag_op *)ctx, in[0], in[1]);
}

static void test_binary(void)
{
    for (size_t k = 0; k < AG_COUNTOF(binary_cases); k++) {
        const binary_case *c = &binary_cases[k];
        const ag_shape in[2] = {c->a, c->b};
        ag_op op = c->op;
        int same = th_agree(1, 2, in, 2, 0.5f, 2, th_binary, &op) &&
                   th_agree(1, 3, in, 2, 0.5f, 2, th_binary, &op);
        char sa[64], sb[64];
        ok(same, "%s of %s and %s: output and gradients, the same bits at 1, 2, 3 threads",
           ag_op_defs[op]->name, ag_shape_str(&c->a, 0, sa, sizeof sa),
           ag_shape_str(&c->b, 0, sb, sizeof sb));
    }
}

/* tp_aside: the work runs once, on a worker (at once on the caller with one thread);
 * the caller goes on meanwhile, and whatever comes next waits for it: the next job, or
 * a change of the thread count. */
typedef struct aside_run {
    _Atomic int runs, self, done;
    _Atomic int release; /* the caller lets the work end */
} aside_run;

static void aside_work(void *ctx, int64_t lo, int64_t hi)
{
    aside_run *a = ctx;
    a->self = tp_self();
    a->runs += lo == 0 && hi == 1;
    while (!a->release) nanosleep(&(struct timespec){0, 100 * 1000}, NULL);
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL); /* still running when waited for */
    a->done = 1;
}

static void test_aside(int threads, int then_resize)
{
    tp_set_threads(threads);
    aside_run a = {.self = -1, .release = threads == 1};
    tp_aside(aside_work, &a);
    /* With workers, the work is held until released, and the caller is already here. */
    int returned = threads == 1 ? a.done : !a.done;
    a.release = 1;
    if (then_resize)
        tp_set_threads(1);
    else
        tp_for(1 << 12, 16, mark, NULL);
    ok(a.runs == 1 && a.done && returned && (threads == 1 ? a.self == 0 : a.self > 0),
       "tp_aside at %d threads: runs once, on %s, and %s waits for it", threads,
       threads == 1 ? "the caller at once" : "a worker while the caller goes on",
       then_resize ? "tp_set_threads" : "the next job");
}

int main(void)
{
    static const int64_t sizes[] = {1, 15, 16, 4095, 4097, 50176, MAX_N};
    for (int threads = 1; threads <= 3; threads++) {
        tp_set_threads(threads);
        for (int each = 0; each <= 1; each++) {
            test_for(each, threads, 100, 16);
            test_for(each, threads, 50176, 4096);
            test_for(each, threads, MAX_N, 1 << 13);
            test_for(each, threads, 33, 16);
        }
        test_for_items(threads, 1, 1);
        test_for_items(threads, 7, 1);
        test_for_items(threads, 13, 3);
        test_for_items(threads, 5, 8);
        test_each_item(threads, 1);
        test_each_item(threads, 4);
        test_each_item(threads, 3 * TP_EACH_CHUNKS * threads + 1);
        test_self(threads);
        test_nested(threads);
    }
    for (int threads = 1; threads <= 3; threads++) test_aside(threads, 0);
    test_aside(2, 1);
    test_for_each_stall();
    test_each_item_stall();
    test_linear_threads();
    test_update_threads(OPT_ADAM);
    test_update_threads(OPT_SGD);

    values = malloc(MAX_N * sizeof *values);
    fill_values(MAX_N);
    for (size_t s = 0; s < AG_COUNTOF(sizes); s++) {
        int64_t n = sizes[s];
        long double ref = 0;
        for (int64_t k = 0; k < n; k++) ref += values[k];
        tp_set_threads(1);
        double one = tp_sum(n, 4096, add_range, NULL);
        int same = 1;
        for (int threads = 2; threads <= 4; threads++) {
            tp_set_threads(threads);
            double v = tp_sum(n, 4096, add_range, NULL);
            same &= memcmp(&v, &one, sizeof v) == 0;
        }
        ok(same, "tp_sum of %lld values: the same bits at 1 to 4 threads", (long long)n);
        is_close(one, (double)ref, 1e-9, 1e-12, "tp_sum of %lld values against a long double sum",
                 (long long)n);
    }
    free(values);

    loss_run a = run_losses(1), b = run_losses(2), c = run_losses(3);
    if (a.grads && b.grads && c.grads) {
        ok(a.bce == b.bce && a.bce == c.bce, "bce (sum of 150,000): same bits at 1, 2, 3 threads");
        ok(a.mse == b.mse && a.mse == c.mse, "mse (mean of 150,000): same bits at 1, 2, 3 threads");
        ok(a.ce == b.ce && a.ce == c.ce, "cross_entropy (4096 rows): same bits at 1, 2, 3 threads");
        size_t bytes = (size_t)a.ngrads * sizeof(float);
        ok(!memcmp(a.grads, b.grads, bytes) && !memcmp(a.grads, c.grads, bytes),
           "their gradients: same bits at 1, 2, 3 threads");
    }
    free(a.grads);
    free(b.grads);
    free(c.grads);
    test_binary();
    tp_set_threads(1);
    return tap_done();
}
