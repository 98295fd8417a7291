/* conv_probe.c — the engine's convolutions against oneDNN's primitives run directly, at
 * specs/ddpm.yaml's shapes: forward, and backward (input, weight and bias gradients).
 *
 *     conv_probe [-t THREADS] [-b BATCH] [-l LAYOUT]
 *
 * The engine runs on the backend AIGC_BACKEND names (openblas: im2col and OpenBLAS's
 * sgemm, runtime/ops/conv.c; onednn: oneDNN's primitives, a slice of the batch per
 * thread, runtime/ops/conv_onednn.c) on the pool's THREADS threads; the direct
 * primitives on THREADS OpenMP threads of oneDNN's own. LAYOUT is plain (NCHW data and
 * PyTorch's weights, what the engine holds) or any (the formats the primitive prefers,
 * with the reorders from and to NCHW timed: x and dy in, y, dx and dW out). Printed per
 * convolution, "key value..." lines:
 *
 *     conv KIND CIN->COUT HxW kK sS  engine FWD BWD  onednn FWD BWD  ms  IMPL  diff D
 *
 * diff is the largest |engine - oneDNN| over the forward's output. Each time is the
 * median of 5 rounds of at least 0.1 s.
 */
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/graph.h"
#include "probe.h"


typedef struct conv {
    int transposed, cin, cout, h, w, k, s, p;
} conv;

/* specs/ddpm.yaml's U-Net, in order. */
static const conv ddpm[] = {
    {0, 1, 32, 28, 28, 3, 1, 1},  {0, 32, 32, 28, 28, 3, 1, 1}, {0, 32, 64, 28, 28, 4, 2, 1},
    {0, 64, 64, 14, 14, 3, 1, 1}, {0, 64, 64, 14, 14, 4, 2, 1}, {0, 64, 64, 7, 7, 3, 1, 1},
    {1, 64, 64, 7, 7, 4, 2, 1},   {0, 128, 64, 14, 14, 3, 1, 1}, {1, 64, 32, 14, 14, 4, 2, 1},
    {0, 64, 32, 28, 28, 3, 1, 1}, {0, 32, 1, 28, 28, 3, 1, 1},
};

typedef void (*run_fn)(void *ctx);

/* Milliseconds per run of fn, in the median round. */
static double time_ms(run_fn fn, void *ctx)
{
    fn(ctx);
    return probe_seconds(fn, ctx, 0.1) * 1e3;
}

static void check(dnnl_status_t st, const char *what)
{
    if (st == dnnl_success) return;
    fprintf(stderr, "conv_probe: %s failed (%d)\n", what, (int)st);
    exit(1);
}

static int out_len(const conv *c, int len)
{
    return c->transposed ? (len - 1) * c->s - 2 * c->p + c->k : (len + 2 * c->p - c->k) / c->s + 1;
}

/* ------------------------------------------------------------- the engine -- */

typedef struct engine_run {
    ag_graph g;
    ag_params ps;
    rng r;
    ag_bwplan *bw;
    ag_node *y;
    int conv_end; /* nodes [0, conv_end) are the convolution's forward */
} engine_run;

static void engine_build(engine_run *e, const conv *c, int batch, const float *x, const float *w,
                         const float *b)
{
    ag_params_init(&e->ps);
    int wshape0 = c->transposed ? c->cin : c->cout, wshape1 = c->transposed ? c->cout : c->cin;
    int ip[3] = {ag_params_add(&e->ps, "x", ag_shape4(batch, c->cin, c->h, c->w), (ag_loc){0}),
                 ag_params_add(&e->ps, "w", ag_shape4(wshape0, wshape1, c->k, c->k), (ag_loc){0}),
                 ag_params_add(&e->ps, "b", ag_shape1(c->cout), (ag_loc){0})};
    ag_params_alloc(&e->ps);
    memcpy(e->ps.data + e->ps.p[ip[0]].offset, x, (size_t)batch * c->cin * c->h * c->w * sizeof *x);
    memcpy(e->ps.data + e->ps.p[ip[1]].offset, w, (size_t)c->cin * c->cout * c->k * c->k * sizeof *w);
    memcpy(e->ps.data + e->ps.p[ip[2]].offset, b, (size_t)c->cout * sizeof *b);
    rng_seed(&e->r, 1);
    ag_graph_init(&e->g, &e->ps, &e->r);
    ag_node *xn = ag_param(&e->g, ip[0]), *wn = ag_param(&e->g, ip[1]), *bn = ag_param(&e->g, ip[2]);
    e->y = c->transposed ? ag_conv_transpose2d(&e->g, xn, wn, bn, c->s, c->p, 0)
                         : ag_conv2d(&e->g, xn, wn, bn, c->s, c->p);
    e->conv_end = e->g.n;
    ag_node *rr = ag_input(&e->g, "r", e->y->shape, 0);
    ag_node *loss = ag_sum(&e->g, ag_binary(&e->g, AG_OP_MUL, e->y, rr));
    ag_error err;
    e->bw = ag_backward_plan(&e->g, loss, ip, 3, &err);
    if (!e->bw || ag_graph_plan(&e->g, 1, &err) != AG_OK) {
        fprintf(stderr, "conv_probe: %s\n", err.msg);
        exit(1);
    }
    rng_fill_uniform(&e->r, rr->data, ag_numel(&e->y->shape), -1, 1);
    ag_forward(&e->g, 0, e->g.n);
}

static void engine_forward(void *ctx)
{
    engine_run *e = ctx;
    ag_forward(&e->g, 0, e->conv_end);
}

static void engine_backward(void *ctx)
{
    engine_run *e = ctx;
    ag_backward(&e->g, e->bw);
}

static void engine_free(engine_run *e)
{
    ag_graph_free(&e->g);
    ag_params_free(&e->ps);
}

/* ------------------------------------------------------------------ oneDNN -- */

typedef struct dnnl_run {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_primitive_t prim[3]; /* forward, backward data, backward weights */
    dnnl_primitive_desc_t pd[3];
    dnnl_memory_t src, wei, bias, dst, dsrc, dwei, dbias, ddst;
    dnnl_memory_t scratch[3];
    char impl[3][64];
    /* Layout any: plain copies of x, y, dy, dx, dW and the reorders between them and the
     * primitives' formats, timed with the primitives (R_COUNT of them). */
    int reorder;
    dnnl_memory_t plain[5];
    dnnl_primitive_t re[5];
} dnnl_run;

enum { R_SRC, R_DST, R_DDST, R_DSRC, R_DWEI, R_COUNT };

static dnnl_memory_t make_memory(dnnl_engine_t eng, const dnnl_memory_desc_t *md)
{
    dnnl_memory_t m;
    check(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE), "memory_create");
    return m;
}

/* A reorder between m, whatever its format, and the plain floats v: into m with `in`,
 * else out of it. */
static void reorder_plain(dnnl_run *d, dnnl_memory_t m, const dnnl_memory_desc_t *plain, float *v, int in)
{
    const dnnl_memory_desc_t *md;
    check(dnnl_memory_get_memory_desc(m, &md), "get_memory_desc");
    dnnl_memory_t p;
    check(dnnl_memory_create(&p, plain, d->eng, v), "memory_create");
    dnnl_primitive_desc_t rpd;
    check(dnnl_reorder_primitive_desc_create(&rpd, in ? plain : md, d->eng, in ? md : plain, d->eng, NULL),
          "reorder pd");
    dnnl_primitive_t r;
    check(dnnl_primitive_create(&r, rpd), "reorder");
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, in ? p : m}, {DNNL_ARG_TO, in ? m : p}};
    check(dnnl_primitive_execute(r, d->stream, 2, args), "reorder execute");
    dnnl_stream_wait(d->stream);
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(p);
}

static void fill(dnnl_run *d, dnnl_memory_t m, const dnnl_memory_desc_t *plain, const float *v)
{
    reorder_plain(d, m, plain, (float *)v, 1);
}

static void unfill(dnnl_run *d, dnnl_memory_t m, const dnnl_memory_desc_t *plain, float *v)
{
    reorder_plain(d, m, plain, v, 0);
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static void dnnl_build(dnnl_run *d, const conv *c, int batch, int any, const float *x,
                       const float *w, const float *b, const float *dy)
{
    memset(d, 0, sizeof *d);
    check(dnnl_engine_create(&d->eng, dnnl_cpu, 0), "engine");
    check(dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags), "stream");
    int oh = out_len(c, c->h), ow = out_len(c, c->w);
    dnnl_dims_t sd = {batch, c->cin, c->h, c->w}, dd = {batch, c->cout, oh, ow},
                wd = {c->cout, c->cin, c->k, c->k}, bd = {c->cout};
    dnnl_dims_t strides = {c->s, c->s}, pad = {c->p, c->p};
    dnnl_memory_desc_t src_p, dst_p, wei_p, bias_p, src_a, dst_a, wei_a;
    /* PyTorch's weights: conv2d [out, in, k, k]; conv_transpose2d [in, out, k, k]. */
    dnnl_format_tag_t wtag = c->transposed ? dnnl_iohw : dnnl_oihw;
    check(dnnl_memory_desc_init_by_tag(&src_p, 4, sd, dnnl_f32, dnnl_nchw), "md");
    check(dnnl_memory_desc_init_by_tag(&dst_p, 4, dd, dnnl_f32, dnnl_nchw), "md");
    check(dnnl_memory_desc_init_by_tag(&wei_p, 4, wd, dnnl_f32, wtag), "md");
    check(dnnl_memory_desc_init_by_tag(&bias_p, 1, bd, dnnl_f32, dnnl_x), "md");
    dnnl_format_tag_t fany = dnnl_format_tag_any;
    check(dnnl_memory_desc_init_by_tag(&src_a, 4, sd, dnnl_f32, any ? fany : dnnl_nchw), "md");
    check(dnnl_memory_desc_init_by_tag(&dst_a, 4, dd, dnnl_f32, any ? fany : dnnl_nchw), "md");
    check(dnnl_memory_desc_init_by_tag(&wei_a, 4, wd, dnnl_f32, any ? fany : wtag), "md");

    if (c->transposed) {
        dnnl_deconvolution_desc_t f, bdat, bwei;
        check(dnnl_deconvolution_forward_desc_init(&f, dnnl_forward_training, dnnl_deconvolution_direct,
                                                   &src_a, &wei_a, &bias_p, &dst_a, strides, pad, pad),
              "deconv fwd desc");
        check(dnnl_primitive_desc_create(&d->pd[0], &f, NULL, d->eng, NULL), "deconv fwd pd");
        check(dnnl_deconvolution_backward_data_desc_init(&bdat, dnnl_deconvolution_direct, &src_a,
                                                         &wei_a, &dst_a, strides, pad, pad),
              "deconv bwd data desc");
        check(dnnl_primitive_desc_create(&d->pd[1], &bdat, NULL, d->eng, d->pd[0]), "deconv bwd data pd");
        check(dnnl_deconvolution_backward_weights_desc_init(&bwei, dnnl_deconvolution_direct, &src_a,
                                                            &wei_a, &bias_p, &dst_a, strides, pad, pad),
              "deconv bwd weights desc");
        check(dnnl_primitive_desc_create(&d->pd[2], &bwei, NULL, d->eng, d->pd[0]), "deconv bwd weights pd");
    } else {
        dnnl_convolution_desc_t f, bdat, bwei;
        check(dnnl_convolution_forward_desc_init(&f, dnnl_forward_training, dnnl_convolution_direct,
                                                 &src_a, &wei_a, &bias_p, &dst_a, strides, pad, pad),
              "conv fwd desc");
        check(dnnl_primitive_desc_create(&d->pd[0], &f, NULL, d->eng, NULL), "conv fwd pd");
        check(dnnl_convolution_backward_data_desc_init(&bdat, dnnl_convolution_direct, &src_a, &wei_a,
                                                       &dst_a, strides, pad, pad),
              "conv bwd data desc");
        check(dnnl_primitive_desc_create(&d->pd[1], &bdat, NULL, d->eng, d->pd[0]), "conv bwd data pd");
        check(dnnl_convolution_backward_weights_desc_init(&bwei, dnnl_convolution_direct, &src_a,
                                                          &wei_a, &bias_p, &dst_a, strides, pad, pad),
              "conv bwd weights desc");
        check(dnnl_primitive_desc_create(&d->pd[2], &bwei, NULL, d->eng, d->pd[0]), "conv bwd weights pd");
    }
    for (int k = 0; k < 3; k++) {
        check(dnnl_primitive_create(&d->prim[k], d->pd[k]), "primitive");
        const char *impl;
        check(dnnl_primitive_desc_query(d->pd[k], dnnl_query_impl_info_str, 0, &impl), "impl");
        snprintf(d->impl[k], sizeof d->impl[k], "%s", impl);
        d->scratch[k] = make_memory(d->eng, query(d->pd[k], dnnl_query_scratchpad_md));
    }
    d->src = make_memory(d->eng, query(d->pd[0], dnnl_query_src_md));
    d->wei = make_memory(d->eng, query(d->pd[0], dnnl_query_weights_md));
    d->bias = make_memory(d->eng, &bias_p);
    d->dst = make_memory(d->eng, query(d->pd[0], dnnl_query_dst_md));
    d->dsrc = make_memory(d->eng, query(d->pd[1], dnnl_query_diff_src_md));
    d->ddst = make_memory(d->eng, query(d->pd[2], dnnl_query_diff_dst_md));
    d->dwei = make_memory(d->eng, query(d->pd[2], dnnl_query_diff_weights_md));
    d->dbias = make_memory(d->eng, &bias_p);
    if (any) {
        d->reorder = 1;
        const dnnl_memory_desc_t *plain_md[R_COUNT] = {&src_p, &dst_p, &dst_p, &src_p, &wei_p};
        dnnl_memory_t blocked[R_COUNT] = {d->src, d->dst, d->ddst, d->dsrc, d->dwei};
        for (int k = 0; k < R_COUNT; k++) {
            d->plain[k] = make_memory(d->eng, plain_md[k]);
            const dnnl_memory_desc_t *bmd;
            check(dnnl_memory_get_memory_desc(blocked[k], &bmd), "get_memory_desc");
            int in = k == R_SRC || k == R_DDST; /* plain -> blocked */
            dnnl_primitive_desc_t rpd;
            check(dnnl_reorder_primitive_desc_create(&rpd, in ? plain_md[k] : bmd, d->eng,
                                                     in ? bmd : plain_md[k], d->eng, NULL), "reorder pd");
            check(dnnl_primitive_create(&d->re[k], rpd), "reorder");
            dnnl_primitive_desc_destroy(rpd);
        }
    }
    if (any) { /* what the timed reorders read */
        fill(d, d->plain[R_SRC], &src_p, x);
        fill(d, d->plain[R_DDST], &dst_p, dy);
    }
    fill(d, d->src, &src_p, x);
    fill(d, d->wei, &wei_p, w);
    fill(d, d->bias, &bias_p, b);
    fill(d, d->ddst, &dst_p, dy);
}

static void run_reorder(dnnl_run *d, int k)
{
    if (!d->reorder) return;
    dnnl_memory_t blocked[R_COUNT] = {d->src, d->dst, d->ddst, d->dsrc, d->dwei};
    int in = k == R_SRC || k == R_DDST;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, in ? d->plain[k] : blocked[k]},
                           {DNNL_ARG_TO, in ? blocked[k] : d->plain[k]}};
    check(dnnl_primitive_execute(d->re[k], d->stream, 2, a), "reorder");
}

static void onednn_forward(void *ctx)
{
    dnnl_run *d = ctx;
    run_reorder(d, R_SRC);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, d->src}, {DNNL_ARG_WEIGHTS, d->wei}, {DNNL_ARG_BIAS, d->bias},
                           {DNNL_ARG_DST, d->dst}, {DNNL_ARG_SCRATCHPAD, d->scratch[0]}};
    check(dnnl_primitive_execute(d->prim[0], d->stream, 5, a), "forward");
    run_reorder(d, R_DST);
    dnnl_stream_wait(d->stream);
}

static void onednn_backward(void *ctx)
{
    dnnl_run *d = ctx;
    run_reorder(d, R_DDST);
    /* The bwd-data primitive may want diff_dst in another format than bwd-weights; in
     * the plain layout both are NCHW. */
    dnnl_exec_arg_t a[] = {{DNNL_ARG_DIFF_DST, d->ddst}, {DNNL_ARG_WEIGHTS, d->wei},
                           {DNNL_ARG_DIFF_SRC, d->dsrc}, {DNNL_ARG_SCRATCHPAD, d->scratch[1]}};
    check(dnnl_primitive_execute(d->prim[1], d->stream, 4, a), "backward data");
    dnnl_exec_arg_t b[] = {{DNNL_ARG_SRC, d->src}, {DNNL_ARG_DIFF_DST, d->ddst},
                           {DNNL_ARG_DIFF_WEIGHTS, d->dwei}, {DNNL_ARG_DIFF_BIAS, d->dbias},
                           {DNNL_ARG_SCRATCHPAD, d->scratch[2]}};
    check(dnnl_primitive_execute(d->prim[2], d->stream, 5, b), "backward weights");
    run_reorder(d, R_DSRC);
    run_reorder(d, R_DWEI);
    dnnl_stream_wait(d->stream);
}

static void dnnl_free(dnnl_run *d)
{
    for (int k = 0; k < R_COUNT && d->reorder; k++) {
        dnnl_primitive_destroy(d->re[k]);
        dnnl_memory_destroy(d->plain[k]);
    }
    for (int k = 0; k < 3; k++) {
        dnnl_primitive_destroy(d->prim[k]);
        dnnl_primitive_desc_destroy(d->pd[k]);
        dnnl_memory_destroy(d->scratch[k]);
    }
    dnnl_memory_t ms[] = {d->src, d->wei, d->bias, d->dst, d->dsrc, d->dwei, d->dbias, d->ddst};
    for (size_t k = 0; k < sizeof ms / sizeof ms[0]; k++) dnnl_memory_destroy(ms[k]);
    dnnl_stream_destroy(d->stream);
    dnnl_engine_destroy(d->eng);
}

/* ------------------------------------------------------------------- main -- */

static float *uniform(rng *r, int64_t n)
{
    float *v = ag_xmalloc((size_t)n * sizeof *v);
    rng_fill_uniform(r, v, n, -1, 1);
    return v;
}

int main(int argc, char **argv)
{
    int threads = 1, batch = 64, any = 0;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "-t")) threads = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "-b")) batch = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "-l")) any = !strcmp(argv[a + 1], "any");
        else return fputs("usage: conv_probe [-t THREADS] [-b BATCH] [-l plain|any]\n", stderr), 2;
    }
    if (threads < 1 || batch < 1) return fputs("conv_probe: bad -t or -b\n", stderr), 2;
    ag_set_threads(threads);
    printf("threads %d\nbatch %d\nlayout %s\n", threads, batch, any ? "any" : "plain");
    double total[4] = {0};
    rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < sizeof ddpm / sizeof ddpm[0]; i++) {
        const conv *c = &ddpm[i];
        int oh = out_len(c, c->h), ow = out_len(c, c->w);
        int64_t nx = (int64_t)batch * c->cin * c->h * c->w, ny = (int64_t)batch * c->cout * oh * ow;
        float *x = uniform(&r, nx), *w = uniform(&r, (int64_t)c->cin * c->cout * c->k * c->k);
        float *b = uniform(&r, c->cout), *dy = uniform(&r, ny), *y = ag_xmalloc((size_t)ny * sizeof *y);
        engine_run e;
        engine_build(&e, c, batch, x, w, b);
        dnnl_run d;
        dnnl_build(&d, c, batch, any, x, w, b, dy);
        /* The engine's oneDNN sgemms run on one OpenMP thread each, the primitives on
         * THREADS of them; the setting belongs to the calling thread. */
        omp_set_num_threads(1);
        double t[4] = {time_ms(engine_forward, &e), time_ms(engine_backward, &e), 0, 0};
        omp_set_num_threads(threads);
        t[2] = time_ms(onednn_forward, &d);
        t[3] = time_ms(onednn_backward, &d);
        omp_set_num_threads(1);
        dnnl_memory_desc_t dst_p;
        dnnl_dims_t dd = {batch, c->cout, oh, ow};
        check(dnnl_memory_desc_init_by_tag(&dst_p, 4, dd, dnnl_f32, dnnl_nchw), "md");
        unfill(&d, d.dst, &dst_p, y);
        float diff = 0;
        for (int64_t k = 0; k < ny; k++) diff = fmaxf(diff, fabsf(y[k] - e.y->data[k]));
        printf("conv %s %3d->%-3d %2dx%-2d k%d s%d  engine %7.3f %7.3f  onednn %7.3f %7.3f  ms  %s,%s,%s  diff %.2g\n",
               c->transposed ? "T" : "-", c->cin, c->cout, c->h, c->w, c->k, c->s, t[0], t[1], t[2],
               t[3], d.impl[0], d.impl[1], d.impl[2], diff);
        for (int k = 0; k < 4; k++) total[k] += t[k];
        engine_free(&e);
        dnnl_free(&d);
        free(x), free(w), free(b), free(dy), free(y);
    }
    printf("total engine %.2f %.2f  onednn %.2f %.2f  ms\n", total[0], total[1], total[2], total[3]);
    ag_set_threads(1);
    return 0;
}
