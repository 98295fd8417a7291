/* linalg.c — sgemm (the backend's, include/aigc/blas.h, and the naive reference beside
 * it), matmul and linear.
 *
 * Dimension letters, for the whole file: op(A) is [M, K], op(B) is [K, N], C is
 * [M, N]; op transposes when the trans flag is set, so a transposed A is stored [K, M].
 * Batched matmul repeats that over the leading dimensions ("groups"). All matrices are
 * row-major; ld* is the stored row length. */
#include <string.h>

#include "aigc/blas.h"
#include "aigc/graph.h"
#include "aigc/pool.h"

/* ------------------------------------------------------------------- sgemm -- */

/* One sgemm cut along C's rows (by_rows) or columns, a piece per chunk of the pool.
 * A linear layer's adds two things to each piece, done while the piece is in cache:
 * C starts as its bias on every row (beta is then ignored), and ep, an element-wise
 * node over C (ldc == n), is run on the piece once it is made. */
typedef struct sgemm_job {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, cut_rows, by_rows;
    float alpha, beta;
    const float *a, *b;
    float *c;
    const float *bias;
    ag_node *ep;
} sgemm_job;

/* ep's range over rows [r0, r1) and columns [c0, c1) of C. */
static void sgemm_epilogue(const sgemm_job *j, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    void (*range)(void *, int64_t, int64_t) = ag_op_defs[j->ep->op]->range;
    if (c0 == 0 && c1 == j->n) {
        range(j->ep, r0 * j->n, r1 * j->n);
        return;
    }
    for (int64_t r = r0; r < r1; r++) range(j->ep, r * j->n + c0, r * j->n + c1);
}

/* Readies rows x cols of C at c, whose columns start at column c0, for the product to
 * be added with the beta returned: the bias on every row, or for beta = 0 zeros when
 * the library applies beta = 0 in a pass of its own (bk_clear_first): OpenBLAS's is
 * slower than memset: a piece of a weight gradient (400 x 392, K = 64) takes 280 us
 * with beta = 0 and 244 us cleared here and added to with beta = 1, with no difference
 * on the other shapes. Both leave no trace of C's old values. */
static float sgemm_start(const sgemm_job *j, float *c, int rows, int cols, int64_t c0)
{
    if (j->bias) {
        for (int r = 0; r < rows; r++)
            memcpy(c + (int64_t)r * j->ldc, j->bias + c0, (size_t)cols * sizeof *c);
        return 1.0f;
    }
    if (j->beta == 0.0f && bk_clear_first()) {
        for (int r = 0; r < rows; r++)
            memset(c + (int64_t)r * j->ldc, 0, (size_t)cols * sizeof *c);
        return 1.0f;
    }
    return j->beta;
}

static void sgemm_piece(void *ctx, int64_t lo, int64_t hi)
{
    const sgemm_job *j = ctx;
    int len = (int)(hi - lo), rows = j->by_rows ? len : j->m, cols = j->by_rows ? j->n : len;
    float *c = j->c + (j->by_rows ? lo * j->ldc : lo);
    float beta = sgemm_start(j, c, rows, cols, j->by_rows ? 0 : lo);
    if (j->by_rows) /* rows lo..hi of op(A) and C */
        bk_sgemm(j->trans_a, j->trans_b, len, j->n, j->k, j->alpha,
                 j->a + (j->trans_a ? lo : lo * j->lda), j->lda, j->b, j->ldb, beta, c, j->ldc);
    else /* columns lo..hi of op(B) and C */
        bk_sgemm(j->trans_a, j->trans_b, j->m, len, j->k, j->alpha, j->a, j->lda,
                 j->b + (j->trans_b ? lo * j->ldb : lo), j->ldb, beta, c, j->ldc);
    if (j->ep) {
        if (j->by_rows)
            sgemm_epilogue(j, lo, hi, 0, j->n);
        else
            sgemm_epilogue(j, 0, j->m, lo, hi);
    }
}

/* A piece of a split sgemm should carry at least this many multiply-adds, or waking a
 * second thread costs more than it saves. */
enum { SGEMM_MIN_PIECE = 1 << 17 };

/* Cut the longer side of C, at batch 64 the features rather than the rows, unless the
 * job asks for its rows. Returns that side's length. */
static int64_t sgemm_cut(sgemm_job *j)
{
    j->by_rows = j->cut_rows || j->m > j->n;
    return j->by_rows ? j->m : j->n;
}

/* The least length of a piece along the cut side (sgemm_cut's). */
static int64_t sgemm_grain(const sgemm_job *j)
{
    int64_t grain = SGEMM_MIN_PIECE / ((int64_t)(j->by_rows ? j->n : j->m) * j->k);
    return grain < 16 ? 16 : grain;
}

static int sgemm_empty(const sgemm_job *j) { return j->m <= 0 || j->n <= 0 || j->k <= 0; }

/* The sgemm on the pool, or with cut == 0 whole on the calling thread. */
static void sgemm_run(sgemm_job *j, int cut)
{
    /* BLAS rejects a leading dimension of 0, which an empty operand would have. */
    if (sgemm_empty(j)) {
        float beta = sgemm_start(j, j->c, j->m, j->n, 0);
        ag_sgemm_naive(j->trans_a, j->trans_b, j->m, j->n, j->k, j->alpha, j->a, j->lda, j->b,
                       j->ldb, beta, j->c, j->ldc);
        if (j->ep && j->m > 0 && j->n > 0) sgemm_epilogue(j, 0, j->m, 0, j->n);
        return;
    }
    int64_t len = sgemm_cut(j);
    if (!cut) {
        sgemm_piece(j, 0, len);
        return;
    }
    tp_for(len, sgemm_grain(j), sgemm_piece, j);
}

/* Two independent sgemms side by side. An sgemm of batch 64 cut in two runs well below
 * OpenBLAS's single-thread rate on each piece (packing and each call's fixed costs do
 * not shrink with the piece); whole, beside the other, it keeps that rate. Paired on 2
 * threads, the two backward sgemms of the VAE's 400 -> 40 layer take 46 us instead of
 * 91 (docs/performance.md, Threads). */
typedef struct sgemm_pair {
    sgemm_job job[2];
    int64_t len[2];
    int pieces; /* per sgemm */
    /* Work that needs neither product (a bias gradient), in then_items chunks of its
     * then_len after the pieces: the thread done first with its sgemm takes them. */
    void (*then)(void *ctx, int64_t lo, int64_t hi);
    void *then_ctx;
    int64_t then_len;
    int then_items;
} sgemm_pair;

/* Item u is piece u % pieces of sgemm u / pieces, then chunk u - 2 pieces of then. */
static void sgemm_pair_piece(void *ctx, int64_t lo, int64_t hi)
{
    sgemm_pair *p = ctx;
    for (int64_t u = lo; u < hi; u++) {
        int s = (int)(u / p->pieces), i = (int)(u % p->pieces);
        if (s > 1) {
            int c = (int)(u - 2 * p->pieces);
            int64_t from = tp_bound(p->then_len, p->then_items, c), to = tp_bound(p->then_len, p->then_items, c + 1);
            if (from < to) p->then(p->then_ctx, from, to);
            continue;
        }
        int64_t from = tp_bound(p->len[s], p->pieces, i);
        int64_t to = tp_bound(p->len[s], p->pieces, i + 1);
        if (from < to) sgemm_piece(&p->job[s], from, to);
    }
}

static sgemm_job job_of(const ag_gemm *q)
{
    return (sgemm_job){.trans_a = q->trans_a, .trans_b = q->trans_b, .m = q->m, .n = q->n,
                       .k = q->k, .lda = q->lda, .ldb = q->ldb, .ldc = q->ldc,
                       .alpha = q->alpha, .beta = q->beta, .a = q->a, .b = q->b, .c = q->c,
                       .cut_rows = q->cut_rows};
}

static int64_t gemm_macs(const ag_gemm *q) { return (int64_t)q->m * q->n * q->k; }

/* The pair, and then over [0, then_len) in chunks of at least then_grain (then may be
 * NULL): in the pair's job when the pair is paired, else a job of its own after it. */
static void sgemm_pair_then(const ag_gemm *x, const ag_gemm *y, void (*then)(void *, int64_t, int64_t),
                            void *then_ctx, int64_t then_len, int64_t then_grain)
{
    sgemm_pair p = {.job = {job_of(x)}, .pieces = tp_threads() / 2, .then = then, .then_ctx = then_ctx,
                    .then_len = then_len};
    /* With an odd thread count the two would not share the threads evenly; pieces under
     * SGEMM_MIN_PIECE are not worth a thread. */
    int64_t least = (int64_t)SGEMM_MIN_PIECE * p.pieces;
    if (y) p.job[1] = job_of(y);
    if (!y || tp_threads() % 2 || sgemm_empty(&p.job[0]) || sgemm_empty(&p.job[1]) ||
        gemm_macs(x) < least || gemm_macs(y) < least) {
        sgemm_run(&p.job[0], 1);
        if (y) sgemm_run(&p.job[1], 1);
        if (then) tp_for(then_len, then_grain, then, then_ctx);
        return;
    }
    p.len[0] = sgemm_cut(&p.job[0]);
    p.len[1] = sgemm_cut(&p.job[1]);
    if (then) {
        int64_t most = then_len / (then_grain > 0 ? then_grain : 1);
        p.then_items = (int)(most < 1 ? 1 : most < tp_threads() ? most : tp_threads());
    }
    /* Item by item, claimed as threads come free (tp_for_items would hand one thread
     * both sgemms and the other the chunks of then). */
    tp_each_item(2 * p.pieces + p.then_items, sgemm_pair_piece, &p);
}

void ag_sgemm_pair(const ag_gemm *x, const ag_gemm *y) { sgemm_pair_then(x, y, NULL, NULL, 0, 0); }

void ag_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    ag_sgemm_pair(&(ag_gemm){trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0},
                  NULL);
}

void ag_sgemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                     int ldc)
{
    sgemm_job j = job_of(&(ag_gemm){trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0});
    sgemm_run(&j, 0);
}

void ag_sgemm_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? a[(int64_t)p * lda + i] : a[(int64_t)i * lda + p];
                float bv = trans_b ? b[(int64_t)j * ldb + p] : b[(int64_t)p * ldb + j];
                s += (double)av * bv;
            }
            float *cij = &c[(int64_t)i * ldc + j];
            /* As BLAS: beta == 0 ignores C, so an uninitialized C cannot leak a NaN. */
            *cij = (float)(alpha * s) + (beta == 0 ? 0.0f : beta * *cij);
        }
    }
}

/* ------------------------------------------------------------------ matmul -- */

/* Where each group's matrices lie. A 2-D right operand is shared by every group; with
 * an untransposed left operand the groups then stack into one tall matrix, and the
 * whole batch is a single sgemm. */
typedef struct mm_geom {
    int ta, tb, m, n, k, lda, ldb;
    int64_t groups, a_step, b_step, c_step;
} mm_geom;

static mm_geom mm_geom_of(const ag_node *nd)
{
    const ag_shape *a = &nd->src[0]->shape, *b = &nd->src[1]->shape;
    int ra = a->ndim, rb = b->ndim;
    mm_geom q = {.ta = nd->i[0] != 0, .tb = nd->i[1] != 0};
    q.m = q.ta ? a->d[ra - 1] : a->d[ra - 2];
    q.k = q.ta ? a->d[ra - 2] : a->d[ra - 1];
    q.n = q.tb ? b->d[rb - 2] : b->d[rb - 1];
    q.lda = a->d[ra - 1];
    q.ldb = b->d[rb - 1];
    q.groups = ag_numel(a) / ((int64_t)q.m * q.k);
    if (rb == 2 && !q.ta) {
        q.m = (int)(q.m * q.groups);
        q.groups = 1;
    }
    q.a_step = (int64_t)q.m * q.k;
    q.b_step = rb == 2 ? 0 : (int64_t)q.k * q.n;
    q.c_step = (int64_t)q.m * q.n;
    return q;
}

static int mm_infer(ag_node *n, ag_error *err)
{
    const ag_node *a = n->src[0], *b = n->src[1];
    int ra = a->shape.ndim, rb = b->shape.ndim, ta = n->i[0] != 0, tb = n->i[1] != 0;
    char sa[64], sb[64];
    ag_shape_str(&a->shape, a->batched, sa, sizeof sa);
    ag_shape_str(&b->shape, b->batched, sb, sizeof sb);
    if (ra < 2 || rb < 2)
        return ag_errorf(err, n->loc,
                         "matmul: both operands need 2 or more dimensions, got %s @ %s", sa, sb);
    if (rb != 2 && rb != ra)
        return ag_errorf(err, n->loc,
                         "matmul: the right operand %s must be 2-D or have as many dimensions "
                         "as the left one %s", sb, sa);
    for (int k = 0; rb == ra && k < ra - 2; k++)
        if (a->shape.d[k] != b->shape.d[k])
            return ag_errorf(err, n->loc, "matmul: the leading dimensions of %s and %s differ",
                             sa, sb);
    int m = a->shape.d[ra - (ta ? 1 : 2)], ka = a->shape.d[ra - (ta ? 2 : 1)];
    int kb = b->shape.d[rb - (tb ? 1 : 2)], nn = b->shape.d[rb - (tb ? 2 : 1)];
    if (ka != kb)
        return ag_errorf(err, n->loc,
                         "matmul: %s%s @ %s%s: the left operand has %d columns but the right "
                         "one has %d rows", sa, ta ? "^T" : "", sb, tb ? "^T" : "", ka, kb);
    n->shape = a->shape;
    n->shape.d[ra - 2] = m;
    n->shape.d[ra - 1] = nn;
    /* The output's dim 0 is the left operand's dim 0 unless that was its K. */
    if (ra > 2)
        n->batched = a->batched || (rb == ra && b->batched);
    else
        n->batched = a->batched && !ta;
    return AG_OK;
}

static void mm_forward(ag_graph *g, ag_node *nd)
{
    mm_geom q = mm_geom_of(nd);
    const float *a = nd->src[0]->data, *b = nd->src[1]->data;
    for (int64_t t = 0; t < q.groups; t++)
        ag_sgemm(q.ta, q.tb, q.m, q.n, q.k, 1.0f, a + t * q.a_step, q.lda, b + t * q.b_step,
                 q.ldb, 0.0f, nd->data + t * q.c_step, q.n);
}

/* dop(A) = dC op(B)^T and dop(B) = op(A)^T dC; a transposed operand takes the
 * transpose of its dop, which swaps the two factors. */
static void mm_backward(ag_graph *g, ag_node *nd, unsigned need)
{
    mm_geom q = mm_geom_of(nd);
    const float *a = nd->src[0]->data, *b = nd->src[1]->data;
    float *da = nd->src[0]->grad, *db = nd->src[1]->grad;
    for (int64_t t = 0; t < q.groups; t++) {
        const float *at = a + t * q.a_step, *bt = b + t * q.b_step, *dc = nd->grad + t * q.c_step;
        if (need & 1u) {
            float *dat = da + t * q.a_step;
            if (!q.ta)
                ag_sgemm(0, !q.tb, q.m, q.k, q.n, 1.0f, dc, q.n, bt, q.ldb, 1.0f, dat, q.lda);
            else
                ag_sgemm(q.tb, 1, q.k, q.m, q.n, 1.0f, bt, q.ldb, dc, q.n, 1.0f, dat, q.lda);
        }
        if (need & 2u) {
            float *dbt = db + t * q.b_step;
            if (!q.tb)
                ag_sgemm(!q.ta, 0, q.k, q.n, q.m, 1.0f, at, q.lda, dc, q.n, 1.0f, dbt, q.ldb);
            else
                ag_sgemm(1, q.ta, q.n, q.k, q.m, 1.0f, dc, q.n, at, q.lda, 1.0f, dbt, q.ldb);
        }
    }
}

const ag_op_def ag_def_matmul = {.name = "matmul", .min_src = 2, .max_src = 2,
                                 .infer = mm_infer, .forward = mm_forward,
                                 .backward = mm_backward};

/* ------------------------------------------------------------------ linear -- */

/* x [R, in] (any leading dims flattened into the R rows), W [out, in], b [out]:
 * y = x W^T + b, PyTorch's nn.Linear with its weight layout. */

/* The forward's product y = x W^T, without its bias and epilogue. */
static sgemm_job linear_job(int rows, int in, int out, const float *x, const float *w, float *y)
{
    return (sgemm_job){.trans_b = 1, .m = rows, .n = out, .k = in, .lda = in, .ldb = in,
                       .ldc = out, .alpha = 1.0f, .a = x, .b = w, .c = y};
}

/* The chunks the forward's product is cut into along W's rows (C's columns), as the
 * pool now cuts it; 1 when it is cut by x's rows instead, or not at all. */
static int linear_parts(int rows, int in, int out)
{
    sgemm_job j = linear_job(rows, in, out, NULL, NULL, NULL);
    if (sgemm_empty(&j) || sgemm_cut(&j) != out) return 1;
    return tp_for_chunks(out, sgemm_grain(&j));
}

static int linear_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0], *w = n->src[1], *b = n->nsrc > 2 ? n->src[2] : NULL;
    char sx[64], sw[64], sb[64];
    ag_shape_str(&x->shape, x->batched, sx, sizeof sx);
    ag_shape_str(&w->shape, w->batched, sw, sizeof sw);
    if (x->shape.ndim < 1)
        return ag_errorf(err, n->loc, "linear: the input must have a feature dimension, got %s",
                         sx);
    if (w->shape.ndim != 2)
        return ag_errorf(err, n->loc, "linear: the weight must be 2-D [out, in], got %s", sw);
    int in = x->shape.d[x->shape.ndim - 1], out = w->shape.d[0];
    if (in != w->shape.d[1])
        return ag_errorf(err, n->loc, "linear: input has %d features but the weight expects %d",
                         in, w->shape.d[1]);
    if (b && (b->shape.ndim != 1 || b->shape.d[0] != out))
        return ag_errorf(err, n->loc, "linear: the bias has shape %s but the weight has %d outputs",
                         ag_shape_str(&b->shape, b->batched, sb, sizeof sb), out);
    n->shape = x->shape;
    n->shape.d[n->shape.ndim - 1] = out;
    n->batched = x->batched && x->shape.ndim > 1;
    /* Scratch of the backward call for its shares of dx past the first (linear_backward),
     * when this node has an input gradient to make: as many as the largest batch that
     * cuts W's rows needs, which is as many as any smaller batch needs. */
    int rows = (int)(ag_numel(&x->shape) / in);
    int cutting = rows < out ? rows : out; /* the most rows that still cut W's */
    n->aux_numel = n->has_grad && x->has_grad ? ag_linear_scratch(cutting, in, out) : 0;
    return AG_OK;
}

static void linear_forward(ag_graph *g, ag_node *n)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    int in = w->shape.d[1], out = w->shape.d[0];
    int rows = (int)(ag_numel(&x->shape) / in);
    sgemm_job j = linear_job(rows, in, out, x->data, w->data, n->data);
    j.bias = n->nsrc > 2 ? n->src[2]->data : NULL;
    j.ep = n->epilogue;
    sgemm_run(&j, 1);
}

/* db += the column sums of dy for columns [lo, hi), row by row for the cache: each
 * column's sum is in row order whatever the cut. */
typedef struct bias_grad_job {
    const float *dy;
    float *db;
    int rows, out, assign;
} bias_grad_job;

static void bias_grad_cols(void *ctx, int64_t lo, int64_t hi)
{
    const bias_grad_job *j = ctx;
    if (j->assign) memset(j->db + lo, 0, (size_t)(hi - lo) * sizeof *j->db);
    for (int r = 0; r < j->rows; r++) {
        const float *row = j->dy + (int64_t)r * j->out;
        for (int64_t c = lo; c < hi; c++) j->db[c] += row[c];
    }
}

/* The input gradient, and the weight's and the bias's when wanted, where the forward
 * cuts W's rows among the threads, in the forward's chunks: chunk [r0, r1) makes those
 * rows of dW and of db, and dy[:, r0:r1] W[r0:r1, :], the share of dx that those rows of
 * W give. The first chunk's share goes into dx, the others' into scratch, added to dx in
 * chunk order after (the same bits on every rerun at a thread count). A thread so reads
 * and writes only the rows of W that it read in the forward, and updates after
 * (opt_step). Made whole on one thread beside dW on the other (ag_sgemm_pair), dx read
 * all of W, and the lines of the other thread's rows, then in both cores' caches, each
 * cost that thread an invalidation of the other copy when it wrote them in the update:
 * the GAN's 784 x 512 weight took it 2.6 times as long as its partner's half (205
 * against 79 us a step). Against the pair, a GAN epoch ran 1-6 % faster in 8 of 8
 * paired runs, a VAE epoch 4-11 % in 8 of 8; against dx alone cut by its columns (each
 * thread reading half of every row of W), as the GAN's D makes it for G's update, a
 * GAN epoch ran up to 8 % faster in 11 of 12 (median 3 %). */
typedef struct linear_parts_job {
    sgemm_job dw, dx;       /* dw.c NULL: no weight gradient; dx: the whole product, whose
                             * k each chunk narrows */
    bias_grad_job bias;     /* bias.db NULL: no bias gradient */
    int nparts;
    float *scratch;         /* shares 1 to nparts - 1, rows x in each */
} linear_parts_job;

static void linear_part(void *ctx, int64_t lo, int64_t hi)
{
    linear_parts_job *j = ctx;
    int64_t share = (int64_t)j->dx.m * j->dx.n;
    for (int64_t u = lo; u < hi; u++) {
        int64_t r0 = tp_bound(j->dw.m, j->nparts, (int)u);
        int64_t r1 = tp_bound(j->dw.m, j->nparts, (int)u + 1);
        if (j->dw.c) sgemm_piece(&j->dw, r0, r1);
        sgemm_job dx = j->dx;
        dx.k = (int)(r1 - r0);
        dx.a += r0;
        dx.b += r0 * dx.ldb;
        if (u > 0) {
            dx.c = j->scratch + (u - 1) * share;
            dx.beta = 0.0f;
        }
        sgemm_piece(&dx, 0, dx.m);
        if (j->bias.db) bias_grad_cols(&j->bias, r0, r1);
    }
}

static void linear_parts_add(void *ctx, int64_t lo, int64_t hi)
{
    const linear_parts_job *j = ctx;
    int64_t share = (int64_t)j->dx.m * j->dx.n;
    for (int p = 1; p < j->nparts; p++) {
        const float *s = j->scratch + (p - 1) * share;
        for (int64_t i = lo; i < hi; i++) j->dx.c[i] += s[i];
    }
}

int64_t ag_linear_scratch(int rows, int in, int out)
{
    return (int64_t)(linear_parts(rows, in, out) - 1) * rows * in;
}

void ag_linear_backward(const ag_linear_grads *q)
{
    int rows = q->rows, in = q->in, out = q->out;
    ag_gemm dx = {0, 0, rows, in, out, 1.0f, q->dy, out, q->w, in, q->assign & 1u ? 0.0f : 1.0f,
                  q->dx, in, 0}; /* dx += dy W */
    /* dW += dy^T x, cut by W's rows when the forward cuts them (its C's columns): a
     * thread then makes the gradient of the rows it read, which the optimizer updates on
     * it too (opt_step), and they stay in its core's cache. */
    ag_gemm dw = {1, 0, out, in, rows, 1.0f, q->dy, out, q->x, in, q->assign & 2u ? 0.0f : 1.0f,
                  q->dw, in, out >= rows};
    bias_grad_job j = {q->dy, q->db, rows, out, (q->assign & 4u) != 0};
    /* dx on its own buffer: not when x is its own weight, one gradient that dx and dW
     * would race on. */
    int own_dx = q->dx && q->dx != q->dw, both = own_dx && q->dw;
    int parts = own_dx ? linear_parts(rows, in, out) : 1;
    if (parts > 1 && (int64_t)(parts - 1) * rows * in <= q->scratch_floats) {
        linear_parts_job p = {.dw = job_of(&dw), .dx = job_of(&dx), .bias = j, .nparts = parts,
                              .scratch = q->scratch};
        p.dw.by_rows = p.dx.by_rows = 1;
        tp_for_items(parts, 1, linear_part, &p);
        tp_for((int64_t)rows * in, 1 << 12, linear_parts_add, &p);
        return;
    }
    /* The bias gradient, chunks of at least 4096 additions (or a second thread is not
     * worth waking), goes in the pair's job: whichever thread ends its sgemm first. */
    void (*bias)(void *, int64_t, int64_t) = q->db ? bias_grad_cols : NULL;
    int64_t grain = rows > 0 && rows < 256 ? 4096 / rows : 16;
    if (both) {
        sgemm_pair_then(&dx, &dw, bias, &j, out, grain);
    } else {
        if (q->dx) ag_sgemm_pair(&dx, NULL);
        if (q->dw) ag_sgemm_pair(&dw, NULL);
        if (bias) tp_for(out, grain, bias, &j);
    }
}

static void linear_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    int in = w->shape.d[1], out = w->shape.d[0];
    ag_linear_backward(&(ag_linear_grads){
        .rows = (int)(ag_numel(&x->shape) / in), .in = in, .out = out, .dy = n->grad,
        .x = x->data, .w = w->data, .dx = need & 1u ? x->grad : NULL,
        .dw = need & 2u ? w->grad : NULL, .db = need & 4u ? n->src[2]->grad : NULL,
        .assign = g->bw_assign, .scratch = n->aux, .scratch_floats = n->aux_cap});
}

const ag_op_def ag_def_linear = {.name = "linear", .min_src = 2, .max_src = 3,
                                 .flags = AG_DEF_BW_ASSIGN | AG_DEF_EPILOGUE | AG_DEF_AUX_SCRATCH,
                                 .infer = linear_infer,
                                 .forward = linear_forward,
                                 .backward = linear_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_matmul(ag_graph *g, ag_node *a, ag_node *b, int trans_a, int trans_b)
{
    return ag_new(g, AG_OP_MATMUL, 2, (ag_node *const[]){a, b}, NULL,
                  (const int[AG_MAX_IP]){trans_a, trans_b});
}

ag_node *ag_linear(ag_graph *g, ag_node *x, ag_node *w, ag_node *b)
{
    return ag_new(g, AG_OP_LINEAR, b ? 3 : 2, (ag_node *const[]){x, w, b}, NULL, NULL);
}
