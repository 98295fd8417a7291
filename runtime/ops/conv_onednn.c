/* conv_onednn.c — conv2d and conv_transpose2d by oneDNN's convolution and deconvolution
 * primitives (runtime/ops/conv_onednn.h).
 *
 * The engine holds NCHW tensors and PyTorch's weights; oneDNN's direct kernels want
 * their own blocked formats (channels in blocks of 16 with AVX-512), and run about
 * twice as fast as im2col and sgemm on the DDPM's shapes even with the reorders to and
 * from them (tests/bench/conv_probe.c). So each primitive takes the format it prefers,
 * and a reorder goes in front of or after it when that is not the plain one.
 *
 * The pool runs the work: the batch is cut in one slice per thread, each slice is a
 * primitive of its own (oneDNN's OpenMP threads stay at one, include/aigc/blas.h), and
 * each thread has a workspace for the blocked copies and the primitives' scratchpads.
 * Everything is made the first time a geometry and slice size is met and kept for the
 * process: the entries, the workspaces, and the partial weight gradients of the slices.
 */
#include "conv_onednn.h"

#include "aigc/blas.h"

#ifdef AIGC_ONEDNN

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/graph.h"
#include "aigc/pool.h"

/* Kept geometries: the DDPM has 11 convolutions, each met at one or two slice sizes in
 * training and a few more in evaluation and sampling. */
enum { CVD_MAX_ENTRIES = 256, CVD_ALIGN = 64 };

/* The tensors a primitive reads or writes, each in the primitive's format; the plain
 * ones are the engine's NCHW. */
typedef enum cvd_port {
    P_SRC,       /* forward's x */
    P_DST,       /* forward's y */
    P_BD_DDST,   /* backward data's dy */
    P_BD_DSRC,   /* backward data's dx */
    P_BW_SRC,    /* backward weights' x */
    P_BW_DDST,   /* backward weights' dy */
    P_BW_DWEI,   /* backward weights' dW */
    P_COUNT
} cvd_port;

/* Which side of the reorder the plain tensor is on. */
static const int port_is_input[P_COUNT] = {1, 0, 1, 0, 1, 1, 0};

typedef enum cvd_prim { F_FWD, F_BWD_DATA, F_BWD_WEIGHTS, F_COUNT } cvd_prim;

/* Memory objects a thread binds to its pointers at each run, one per role. */
enum {
    M_PLAIN = 0,               /* a port's plain side */
    M_WANT = P_COUNT,          /* a port's side in the primitive's format */
    M_SCRATCH = 2 * P_COUNT,   /* a primitive's scratchpad */
    M_WEI = M_SCRATCH + F_COUNT,   /* the weight in the forward's, backward data's formats */
    M_WEI_PLAIN = M_WEI + 2,       /* the engine's weight, reordered to those */
    M_BIAS = M_WEI_PLAIN + 2, M_DBIAS, M_DSRC_PLAIN,
    M_COUNT
};

typedef struct cvd_entry {
    cvd_conv key; /* n: the slice's images */
    int ok;       /* 0: oneDNN has no primitive for it, the im2col path runs */
    dnnl_primitive_t prim[F_COUNT];
    dnnl_memory_desc_t plain[P_COUNT], want[P_COUNT], scratch[F_COUNT];
    dnnl_memory_desc_t wei_plain, wei[2], bias; /* wei: the forward's, backward data's */
    dnnl_primitive_t re[P_COUNT];  /* plain <-> want; NULL when they are one */
    dnnl_primitive_t wei_re[2];    /* the plain weight to wei[k]; NULL when plain */
    size_t off[P_COUNT];           /* a port's place in a workspace, when reordered */
    size_t dsrc_plain_off, scratch_off, ws_bytes;
    size_t wei_bytes[2];
    int ddst_shared;               /* both backward primitives read dy in one format */
    dnnl_memory_t mem[TP_MAX_THREADS][M_COUNT];
} cvd_entry;

/* Per thread t of the pool: its stream, its workspace, and for a call made on it, the
 * weight in the primitives' formats and the slices' partial sums (shared[t]). A call is
 * made on thread 0, or inside a chunk on any thread, several at once (an evaluation's
 * graphs): the lock keeps the entries and the engine, which they all share. */
static struct {
    pthread_mutex_t lock;
    dnnl_engine_t engine;
    dnnl_primitive_attr_t attr; /* scratchpads are ours: primitives run side by side */
    cvd_entry *entry[CVD_MAX_ENTRIES];
    int nentries, failed;
    dnnl_stream_t stream[TP_MAX_THREADS];
    char *ws[TP_MAX_THREADS], *shared[TP_MAX_THREADS];
    size_t ws_bytes[TP_MAX_THREADS], shared_bytes[TP_MAX_THREADS];
} cvd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t align_up(size_t n) { return (n + CVD_ALIGN - 1) & ~(size_t)(CVD_ALIGN - 1); }

/* A buffer of at least `bytes`, kept for the next call; its contents are not. */
static char *grow(char **buf, size_t *have, size_t bytes)
{
    if (bytes > *have) {
        free(*buf);
        *have = align_up(bytes);
        *buf = aligned_alloc(CVD_ALIGN, *have);
        if (!*buf) ag_assert_fail(__FILE__, __LINE__, "out of memory for oneDNN's workspace");
    }
    return *buf;
}

/* ---------------------------------------------------------------- cleanup -- */

static void entry_free(cvd_entry *e)
{
    for (int t = 0; t < TP_MAX_THREADS; t++)
        for (int m = 0; m < M_COUNT; m++)
            if (e->mem[t][m]) dnnl_memory_destroy(e->mem[t][m]);
    for (int k = 0; k < F_COUNT; k++)
        if (e->prim[k]) dnnl_primitive_destroy(e->prim[k]);
    for (int p = 0; p < P_COUNT; p++)
        if (e->re[p]) dnnl_primitive_destroy(e->re[p]);
    for (int k = 0; k < 2; k++)
        if (e->wei_re[k]) dnnl_primitive_destroy(e->wei_re[k]);
    free(e);
}

/* At exit, so that nothing of oneDNN's or of the workspaces is left to a leak checker. */
static void release(void)
{
    for (int k = 0; k < cvd.nentries; k++) entry_free(cvd.entry[k]);
    for (int t = 0; t < TP_MAX_THREADS; t++) {
        if (cvd.stream[t]) dnnl_stream_destroy(cvd.stream[t]);
        free(cvd.ws[t]);
        free(cvd.shared[t]);
    }
    if (cvd.attr) dnnl_primitive_attr_destroy(cvd.attr);
    if (cvd.engine) dnnl_engine_destroy(cvd.engine);
}

/* The engine, and the streams of threads [t0, t1); under the lock. */
static int ready(int t0, int t1)
{
    if (cvd.failed) return 0;
    if (!cvd.engine) {
        cvd.failed = 1;
        if (dnnl_engine_create(&cvd.engine, dnnl_cpu, 0) != dnnl_success) return 0;
        atexit(release);
        if (dnnl_primitive_attr_create(&cvd.attr) != dnnl_success ||
            dnnl_primitive_attr_set_scratchpad_mode(cvd.attr, dnnl_scratchpad_mode_user) != dnnl_success)
            return 0;
        cvd.failed = 0;
    }
    for (int t = t0; t < t1; t++)
        if (!cvd.stream[t] && dnnl_stream_create(&cvd.stream[t], cvd.engine, dnnl_stream_default_flags) != dnnl_success)
            return 0;
    return 1;
}

/* ------------------------------------------------------------- the entries -- */

static const dnnl_memory_desc_t *query(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* A reorder from one format to another, NULL when they are the same; *fail is set when
 * oneDNN has none, or one that needs a scratchpad. */
static dnnl_primitive_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int *fail)
{
    if (dnnl_memory_desc_equal(from, to)) return NULL;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p = NULL;
    if (dnnl_reorder_primitive_desc_create(&pd, from, cvd.engine, to, cvd.engine, NULL) != dnnl_success) {
        *fail = 1;
        return NULL;
    }
    if (dnnl_memory_desc_get_size(query(pd, dnnl_query_scratchpad_md)) > 0 ||
        dnnl_primitive_create(&p, pd) != dnnl_success)
        *fail = 1;
    dnnl_primitive_desc_destroy(pd);
    return p;
}

/* The three primitives' descriptors for e->key, each tensor in the format they prefer;
 * e->plain, e->wei_plain and e->bias set. */
static int make_descs(cvd_entry *e, dnnl_primitive_desc_t pd[F_COUNT])
{
    const cvd_conv *c = &e->key;
    dnnl_dims_t xd = {c->n, c->cin, c->ih, c->iw}, yd = {c->n, c->cout, c->oh, c->ow};
    dnnl_dims_t wd = {c->cout, c->cin, c->kh, c->kw}, bd = {c->cout};
    dnnl_dims_t strides = {c->sh, c->sw}, pad_l = {c->ph, c->pw};
    /* A transposed convolution's output padding is padding taken off the far side. */
    dnnl_dims_t pad_r = {c->ph - c->oph, c->pw - c->opw};
    if (pad_r[0] < 0 || pad_r[1] < 0) return 0;
    dnnl_memory_desc_t x_any, y_any, w_any, x_plain, y_plain;
    if (dnnl_memory_desc_init_by_tag(&x_plain, 4, xd, dnnl_f32, dnnl_nchw) ||
        dnnl_memory_desc_init_by_tag(&y_plain, 4, yd, dnnl_f32, dnnl_nchw) ||
        dnnl_memory_desc_init_by_tag(&e->wei_plain, 4, wd, dnnl_f32, c->transposed ? dnnl_iohw : dnnl_oihw) ||
        dnnl_memory_desc_init_by_tag(&e->bias, 1, bd, dnnl_f32, dnnl_x) ||
        dnnl_memory_desc_init_by_tag(&x_any, 4, xd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&y_any, 4, yd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any))
        return 0;
    const dnnl_memory_desc_t plain[P_COUNT] = {x_plain, y_plain, y_plain, x_plain, x_plain, y_plain, e->wei_plain};
    memcpy(e->plain, plain, sizeof plain);
    const dnnl_memory_desc_t *bias = c->bias ? &e->bias : NULL;
    /* Both kinds' descriptors are one struct in oneDNN 2.x; the typedefs name it twice. */
    dnnl_convolution_desc_t d[F_COUNT];
    dnnl_status_t st[F_COUNT];
    if (c->transposed) {
        st[F_FWD] = dnnl_deconvolution_forward_desc_init(&d[F_FWD], dnnl_forward_training,
                                                         dnnl_deconvolution_direct, &x_any, &w_any, bias,
                                                         &y_any, strides, pad_l, pad_r);
        st[F_BWD_DATA] = dnnl_deconvolution_backward_data_desc_init(&d[F_BWD_DATA], dnnl_deconvolution_direct,
                                                                    &x_any, &w_any, &y_any, strides, pad_l, pad_r);
        st[F_BWD_WEIGHTS] = dnnl_deconvolution_backward_weights_desc_init(
            &d[F_BWD_WEIGHTS], dnnl_deconvolution_direct, &x_any, &w_any, bias, &y_any, strides, pad_l, pad_r);
    } else {
        st[F_FWD] = dnnl_convolution_forward_desc_init(&d[F_FWD], dnnl_forward_training,
                                                       dnnl_convolution_direct, &x_any, &w_any, bias,
                                                       &y_any, strides, pad_l, pad_r);
        st[F_BWD_DATA] = dnnl_convolution_backward_data_desc_init(&d[F_BWD_DATA], dnnl_convolution_direct,
                                                                  &x_any, &w_any, &y_any, strides, pad_l, pad_r);
        st[F_BWD_WEIGHTS] = dnnl_convolution_backward_weights_desc_init(
            &d[F_BWD_WEIGHTS], dnnl_convolution_direct, &x_any, &w_any, bias, &y_any, strides, pad_l, pad_r);
    }
    for (int k = 0; k < F_COUNT; k++)
        if (st[k] != dnnl_success ||
            dnnl_primitive_desc_create(&pd[k], &d[k], cvd.attr, cvd.engine, k ? pd[F_FWD] : NULL) != dnnl_success)
            return 0;
    return 1;
}

/* Where each port's tensor is read or written by which primitive. */
static const struct {
    cvd_prim prim;
    dnnl_query_t what;
} port_of[P_COUNT] = {
    [P_SRC] = {F_FWD, dnnl_query_src_md},
    [P_DST] = {F_FWD, dnnl_query_dst_md},
    [P_BD_DDST] = {F_BWD_DATA, dnnl_query_diff_dst_md},
    [P_BD_DSRC] = {F_BWD_DATA, dnnl_query_diff_src_md},
    [P_BW_SRC] = {F_BWD_WEIGHTS, dnnl_query_src_md},
    [P_BW_DDST] = {F_BWD_WEIGHTS, dnnl_query_diff_dst_md},
    [P_BW_DWEI] = {F_BWD_WEIGHTS, dnnl_query_diff_weights_md},
};

/* The primitives and reorders for key, and a thread's workspace: each reordered port's
 * blocked copy, backward data's dx (added into the engine's, so never written there
 * directly) and the largest scratchpad. ok is 0 when oneDNN cannot do it. */
static cvd_entry *entry_make(const cvd_conv *key)
{
    cvd_entry *e = ag_xmalloc(sizeof *e);
    memset(e, 0, sizeof *e);
    e->key = *key;
    dnnl_primitive_desc_t pd[F_COUNT] = {NULL, NULL, NULL};
    int fail = !make_descs(e, pd);
    size_t at = 0, scratch = 0;
    for (int p = 0; p < P_COUNT && !fail; p++) {
        e->want[p] = *query(pd[port_of[p].prim], port_of[p].what);
        e->re[p] = port_is_input[p] ? make_reorder(&e->plain[p], &e->want[p], &fail)
                                    : make_reorder(&e->want[p], &e->plain[p], &fail);
        if (e->re[p] || p == P_BD_DSRC) {
            e->off[p] = at;
            at += align_up(dnnl_memory_desc_get_size(&e->want[p]));
        }
    }
    e->ddst_shared = !fail && dnnl_memory_desc_equal(&e->want[P_BD_DDST], &e->want[P_BW_DDST]);
    e->dsrc_plain_off = at;
    if (!fail && e->re[P_BD_DSRC]) at += align_up(dnnl_memory_desc_get_size(&e->plain[P_BD_DSRC]));
    for (int k = 0; k < 2 && !fail; k++) {
        e->wei[k] = *query(pd[k], dnnl_query_weights_md);
        e->wei_re[k] = make_reorder(&e->wei_plain, &e->wei[k], &fail);
        e->wei_bytes[k] = align_up(dnnl_memory_desc_get_size(&e->wei[k]));
    }
    for (int k = 0; k < F_COUNT && !fail; k++) {
        e->scratch[k] = *query(pd[k], dnnl_query_scratchpad_md);
        size_t s = dnnl_memory_desc_get_size(&e->scratch[k]);
        if (s > scratch) scratch = s;
        if (dnnl_primitive_create(&e->prim[k], pd[k]) != dnnl_success) fail = 1;
    }
    e->scratch_off = at;
    e->ws_bytes = at + align_up(scratch);
    for (int k = 0; k < F_COUNT; k++)
        if (pd[k]) dnnl_primitive_desc_destroy(pd[k]);
    e->ok = !fail;
    return e;
}

/* The entry for key, made when first met; NULL when the cache is full. */
static cvd_entry *entry_for(const cvd_conv *key)
{
    for (int k = 0; k < cvd.nentries; k++)
        if (!memcmp(&cvd.entry[k]->key, key, sizeof *key)) return cvd.entry[k];
    if (cvd.nentries == CVD_MAX_ENTRIES) return NULL;
    return cvd.entry[cvd.nentries++] = entry_make(key);
}

/* ------------------------------------------------------------- execution -- */

/* Memory object `which` of thread t, over ptr. */
static dnnl_memory_t bind(cvd_entry *e, int t, int which, const dnnl_memory_desc_t *md, const void *ptr)
{
    dnnl_memory_t *m = &e->mem[t][which];
    if (!*m && dnnl_memory_create(m, md, cvd.engine, DNNL_MEMORY_NONE) != dnnl_success)
        ag_assert_fail(__FILE__, __LINE__, "oneDNN cannot make a memory object");
    AG_ASSERT(dnnl_memory_set_data_handle(*m, (void *)ptr) == dnnl_success);
    return *m;
}

static void execute(const_dnnl_primitive_t p, int t, int nargs, const dnnl_exec_arg_t *args)
{
    AG_ASSERT(dnnl_primitive_execute(p, cvd.stream[t], nargs, args) == dnnl_success);
}

static void reorder(const_dnnl_primitive_t p, int t, dnnl_memory_t from, dnnl_memory_t to)
{
    execute(p, t, 2, (dnnl_exec_arg_t[]){{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

/* An input port's tensor in the primitive's format, from the plain one. */
static dnnl_memory_t port_in(cvd_entry *e, int t, cvd_port p, const float *plain)
{
    dnnl_memory_t m = bind(e, t, M_PLAIN + p, &e->plain[p], plain);
    if (!e->re[p]) return m;
    dnnl_memory_t want = bind(e, t, M_WANT + p, &e->want[p], cvd.ws[t] + e->off[p]);
    reorder(e->re[p], t, m, want);
    return want;
}

/* Where the primitive writes an output port's tensor; port_done reorders it to plain. */
static dnnl_memory_t port_out(cvd_entry *e, int t, cvd_port p, void *plain)
{
    if (!e->re[p]) return bind(e, t, M_PLAIN + p, &e->plain[p], plain);
    bind(e, t, M_PLAIN + p, &e->plain[p], plain);
    return bind(e, t, M_WANT + p, &e->want[p], cvd.ws[t] + e->off[p]);
}

static void port_done(cvd_entry *e, int t, cvd_port p)
{
    if (e->re[p]) reorder(e->re[p], t, e->mem[t][M_WANT + p], e->mem[t][M_PLAIN + p]);
}

static dnnl_memory_t scratch(cvd_entry *e, int t, cvd_prim k)
{
    return bind(e, t, M_SCRATCH + k, &e->scratch[k], cvd.ws[t] + e->scratch_off);
}

/* One call: slice s holds images [slice_lo(s), slice_lo(s + 1)) and runs entry[s] in
 * run, on thread t. */
typedef struct cvd_job cvd_job;
typedef void (*cvd_slice_fn)(const cvd_job *j, cvd_entry *e, int t, int s);
struct cvd_job {
    const cvd_conv *c;
    cvd_slice_fn run;
    int slices;
    cvd_entry *entry[TP_MAX_THREADS];
    const float *x, *b, *dy;
    float *y, *dx;
    int assign_dx;      /* backward data writes dx instead of adding to it */
    const char *wei[2]; /* the weight in the forward's and backward data's formats */
    float *part;        /* per slice, with dw: its weight gradient, then its bias gradient */
    int64_t part_len;
};

static int slice_lo(const cvd_job *j, int s) { return (int)((int64_t)j->c->n * s / j->slices); }

static int64_t in_numel(const cvd_conv *c) { return (int64_t)c->cin * c->ih * c->iw; }
static int64_t out_numel(const cvd_conv *c) { return (int64_t)c->cout * c->oh * c->ow; }
static int64_t weight_numel(const cvd_conv *c) { return (int64_t)c->cout * c->cin * c->kh * c->kw; }

/* The pool's piece of a job: its slices, each whole on this thread. */
static void run_slices(void *ctx, int64_t lo, int64_t hi)
{
    const cvd_job *j = ctx;
    int t = tp_self();
    bk_single_thread();
    for (int64_t s = lo; s < hi; s++) j->run(j, j->entry[s], t, (int)s);
}

static void forward_slice(const cvd_job *j, cvd_entry *e, int t, int s)
{
    const cvd_conv *c = j->c;
    int64_t i0 = slice_lo(j, s);
    dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC, port_in(e, t, P_SRC, j->x + i0 * in_numel(c))},
        {DNNL_ARG_WEIGHTS, bind(e, t, M_WEI, &e->wei[0], j->wei[0])},
        {DNNL_ARG_DST, port_out(e, t, P_DST, j->y + i0 * out_numel(c))},
        {DNNL_ARG_SCRATCHPAD, scratch(e, t, F_FWD)},
        {DNNL_ARG_BIAS, c->bias ? bind(e, t, M_BIAS, &e->bias, j->b) : NULL},
    };
    execute(e->prim[F_FWD], t, c->bias ? 5 : 4, args);
    port_done(e, t, P_DST);
}

/* dx += backward data (or dx = it); with part, the slice's dW (and db) into its partial
 * sums. An assigned dx takes backward data's result itself, or through the reorder to
 * the plain format: no workspace copy, no pass to add it, and no zeroing of dx before
 * (80 MB of writes in a DDPM step, most of them its convolutions' input gradients). */
static void backward_slice(const cvd_job *j, cvd_entry *e, int t, int s)
{
    const cvd_conv *c = j->c;
    int64_t i0 = slice_lo(j, s), len = slice_lo(j, s + 1) - i0;
    const float *dy = j->dy + i0 * out_numel(c);
    dnnl_memory_t ddst = NULL;
    if (j->dx) {
        float *dx = j->dx + i0 * in_numel(c);
        int direct = j->assign_dx && !e->re[P_BD_DSRC];
        void *at = direct ? (void *)dx : cvd.ws[t] + e->off[P_BD_DSRC];
        dnnl_memory_t dsrc = bind(e, t, M_WANT + P_BD_DSRC, &e->want[P_BD_DSRC], at);
        ddst = port_in(e, t, P_BD_DDST, dy);
        dnnl_exec_arg_t args[] = {
            {DNNL_ARG_DIFF_DST, ddst},
            {DNNL_ARG_WEIGHTS, bind(e, t, M_WEI + 1, &e->wei[1], j->wei[1])},
            {DNNL_ARG_DIFF_SRC, dsrc},
            {DNNL_ARG_SCRATCHPAD, scratch(e, t, F_BWD_DATA)},
        };
        execute(e->prim[F_BWD_DATA], t, 4, args);
        const float *g = (const float *)(cvd.ws[t] + e->off[P_BD_DSRC]);
        if (e->re[P_BD_DSRC]) {
            g = j->assign_dx ? dx : (const float *)(cvd.ws[t] + e->dsrc_plain_off);
            reorder(e->re[P_BD_DSRC], t, dsrc, bind(e, t, M_DSRC_PLAIN, &e->plain[P_BD_DSRC], g));
        }
        if (!j->assign_dx)
            for (int64_t k = 0, n = len * in_numel(c); k < n; k++) dx[k] += g[k];
    }
    if (j->part) {
        float *dw = j->part + s * j->part_len;
        dnnl_exec_arg_t args[] = {
            {DNNL_ARG_SRC, port_in(e, t, P_BW_SRC, j->x + i0 * in_numel(c))},
            {DNNL_ARG_DIFF_DST, ddst && e->ddst_shared ? ddst : port_in(e, t, P_BW_DDST, dy)},
            {DNNL_ARG_DIFF_WEIGHTS, port_out(e, t, P_BW_DWEI, dw)},
            {DNNL_ARG_SCRATCHPAD, scratch(e, t, F_BWD_WEIGHTS)},
            {DNNL_ARG_DIFF_BIAS, c->bias ? bind(e, t, M_DBIAS, &e->bias, dw + weight_numel(c)) : NULL},
        };
        execute(e->prim[F_BWD_WEIGHTS], t, c->bias ? 5 : 4, args);
        port_done(e, t, P_BW_DWEI);
    }
}

/* The job's slices, one per thread of the pool (one inside a chunk, where the pool is
 * the one thread), their entries and the workspaces of the threads that will run them. */
static int job_slices(cvd_job *j, const cvd_conv *c)
{
    int threads = tp_threads(), self = tp_self();
    int slices = threads < c->n ? threads : c->n;
    /* Threads [t0, t1) run the slices: the caller alone, or the caller (thread 0) and
     * the workers. */
    int t0 = threads == 1 ? self : 0, t1 = threads == 1 ? self + 1 : threads;
    *j = (cvd_job){.c = c, .slices = slices};
    pthread_mutex_lock(&cvd.lock);
    int ok = ready(t0, t1);
    for (int s = 0; s < slices && ok; s++) {
        cvd_conv key = *c;
        key.n = slice_lo(j, s + 1) - slice_lo(j, s);
        j->entry[s] = entry_for(&key);
        /* The slices share one copy of the weight in the primitives' formats. */
        ok = j->entry[s] && j->entry[s]->ok &&
             dnnl_memory_desc_equal(&j->entry[s]->wei[0], &j->entry[0]->wei[0]) &&
             dnnl_memory_desc_equal(&j->entry[s]->wei[1], &j->entry[0]->wei[1]);
    }
    pthread_mutex_unlock(&cvd.lock);
    for (int s = 0; s < slices && ok; s++)
        for (int t = t0; t < t1; t++) grow(&cvd.ws[t], &cvd.ws_bytes[t], j->entry[s]->ws_bytes);
    return ok;
}

/* job_slices, then the weight in the formats of the primitives in `prims` (a bit per
 * cvd_prim) at the head of the calling thread's shared buffer, the slices' partial sums
 * after it when part. 0 when oneDNN cannot take the call. */
static int job_make(cvd_job *j, const cvd_conv *c, const float *w, unsigned prims, int part)
{
    if (bk_current() != BK_ONEDNN || c->n < 1) return 0;
    bk_single_thread();
    if (!job_slices(j, c)) return 0;
    cvd_entry *e = j->entry[0];
    int t = tp_self();
    j->part_len = weight_numel(c) + c->cout;
    size_t part_at = e->wei_bytes[0] + e->wei_bytes[1];
    size_t bytes = part_at + (part ? (size_t)j->slices * (size_t)j->part_len * sizeof(float) : 0);
    char *buf = grow(&cvd.shared[t], &cvd.shared_bytes[t], bytes);
    if (part) j->part = (float *)(buf + part_at);
    for (int k = 0; k < 2; k++) {
        j->wei[k] = (const char *)w;
        if (!(prims >> k & 1u) || !e->wei_re[k]) continue;
        char *to = buf + (k ? e->wei_bytes[0] : 0);
        reorder(e->wei_re[k], t, bind(e, t, M_WEI_PLAIN + k, &e->wei_plain, w), bind(e, t, M_WEI + k, &e->wei[k], to));
        j->wei[k] = to;
    }
    return 1;
}

int cvd_forward(const cvd_conv *c, const float *x, const float *w, const float *b, float *y)
{
    cvd_job j;
    if (!job_make(&j, c, w, 1u << F_FWD, 0)) return 0;
    j.x = x;
    j.b = b;
    j.y = y;
    j.run = forward_slice;
    tp_for_items(j.slices, 1, run_slices, &j);
    return 1;
}

int cvd_backward(const cvd_conv *c, const float *x, const float *w, const float *dy, float *dx,
                 int assign_dx, float *dw, float *db)
{
    cvd_job j;
    if (!job_make(&j, c, w, dx ? 1u << F_BWD_DATA : 0, dw || db)) return 0;
    j.x = x;
    j.dy = dy;
    j.dx = dx;
    j.assign_dx = assign_dx;
    j.run = backward_slice;
    tp_for_items(j.slices, 1, run_slices, &j);
    /* The slices' sums in slice order: the same bits at a given thread count. */
    for (int s = 0; j.part && s < j.slices; s++) {
        const float *p = j.part + s * j.part_len;
        if (dw)
            for (int64_t k = 0; k < weight_numel(c); k++) dw[k] += p[k];
        if (db)
            for (int k = 0; k < c->cout; k++) db[k] += p[weight_numel(c) + k];
    }
    return 1;
}

#else

int cvd_forward(const cvd_conv *c, const float *x, const float *w, const float *b, float *y)
{
    return 0;
}

int cvd_backward(const cvd_conv *c, const float *x, const float *w, const float *dy, float *dx,
                 int assign_dx, float *dw, float *db)
{
    return 0;
}

#endif
