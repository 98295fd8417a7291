/*
 * elementwise.c — the element-wise ops: the four broadcasting binary ops, then the
 * unary ops (functions of one value and the node's scalars f[]).
 */
#include <math.h>

#include "aigc/graph.h"
#include "aigc/pool.h"
#include "axis.h"
#include "build.h"
#include "vmath.h"

/* ---- broadcasting --------------------------------------------------------------- */

/* NumPy's rule: shapes aligned at the right, a dim of 1 stretches to the other's size.
 * The batch dim is symbolic, since its size changes from one batch to the next: it
 * matches the other source's batch dim or a 1, never a fixed size that happens to be
 * equal today, and it must stay the result's dim 0. */
static int bc_dim(const ag_node *x, int nd, int k)
{
    int j = k - (nd - x->shape.ndim);
    return j >= 0 ? x->shape.d[j] : 1;
}

static int bc_is_batch(const ag_node *x, int nd, int k)
{
    return x->batched && k == nd - x->shape.ndim;
}

static int bc_infer(ag_node *n, ag_error *err)
{
    const ag_node *a = n->src[0], *b = n->src[1];
    int nd = a->shape.ndim > b->shape.ndim ? a->shape.ndim : b->shape.ndim;
    n->shape.ndim = nd;
    n->batched = 0;
    n->aux_numel = 0;
    for (int k = 0; k < nd; k++) {
        int da = bc_dim(a, nd, k), db = bc_dim(b, nd, k);
        int ba = bc_is_batch(a, nd, k), bb = bc_is_batch(b, nd, k);
        int fits;
        if (ba || bb)
            fits = k == 0 && (ba ? bb || db == 1 : da == 1);
        else
            fits = da == db || da == 1 || db == 1;
        if (!fits)
            return ag_errorf(err, n->loc, "%s: shapes %s and %s do not broadcast",
                             ax_op_name(n), AX_SHAPE(a), AX_SHAPE(b));
        n->shape.d[k] = ba ? da : bb ? db : da == 1 ? db : da;
        n->batched |= ba || bb;
    }
    return AG_OK;
}

/* One innermost run of a broadcast loop: len outputs; the sources advance by sa and sb
 * per output (0 where they are broadcast). ga and gb are NULL when not needed. */
typedef struct bc_row {
    int64_t len, sa, sb;
    const float *a, *b, *gy;
    float *y, *ga, *gb;
} bc_row;

typedef void (*bc_row_fn)(const bc_row *r);

/* A binary node's loop: rows of d[3] outputs over the merged outer dims d[0..2]; a
 * source's run starts at the sum of its strides m*[0..2] times the row's indices and
 * advances by m*[3] per output (0 where it is broadcast). */
typedef struct bc_loop {
    const ag_node *n;
    bc_row_fn row;
    float *ga, *gb;
    int64_t d[AG_MAX_DIMS], ma[AG_MAX_DIMS], mb[AG_MAX_DIMS];
    int64_t pieces; /* per row */
} bc_loop;

/* Output dims of size 1 are dropped and neighbouring dims that broadcast the same way
 * are merged, so equal shapes make one long row and [N, C] + [C] makes N rows of C. */
static void bc_plan(bc_loop *l)
{
    const ag_node *n = l->n, *a = n->src[0], *b = n->src[1];
    const ag_shape *o = &n->shape;
    int64_t stra[AG_MAX_DIMS], strb[AG_MAX_DIMS], sa = 1, sb = 1;
    for (int k = o->ndim - 1; k >= 0; k--) {
        int da = bc_dim(a, o->ndim, k), db = bc_dim(b, o->ndim, k);
        stra[k] = da == 1 ? 0 : sa;
        strb[k] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
    }
    /* Merged dims, right-aligned in 4 slots so that slot 3 is the row. */
    int64_t d[AG_MAX_DIMS] = {1, 1, 1, 1}, ma[AG_MAX_DIMS] = {0}, mb[AG_MAX_DIMS] = {0};
    int nd = 0;
    for (int k = 0; k < o->ndim; k++) {
        if (o->d[k] == 1) continue;
        if (nd > 0 && (ma[nd - 1] == 0) == (stra[k] == 0) &&
            (mb[nd - 1] == 0) == (strb[k] == 0)) {
            d[nd - 1] *= o->d[k];
        } else {
            d[nd] = o->d[k];
            nd++;
        }
        ma[nd - 1] = stra[k];
        mb[nd - 1] = strb[k];
    }
    int shift = AG_MAX_DIMS - nd;
    for (int k = AG_MAX_DIMS - 1; k >= 0; k--) {
        l->d[k] = k >= shift ? d[k - shift] : 1;
        l->ma[k] = k >= shift ? ma[k - shift] : 0;
        l->mb[k] = k >= shift ? mb[k - shift] : 0;
    }
}

/* Units [lo, hi): unit u is piece u % pieces of row u / pieces. */
static void bc_units(void *ctx, int64_t lo, int64_t hi)
{
    const bc_loop *l = ctx;
    const ag_node *n = l->n, *a = n->src[0], *b = n->src[1];
    const int64_t *d = l->d, *ma = l->ma, *mb = l->mb;
    for (int64_t u = lo; u < hi; u++) {
        int64_t r = u / l->pieces, p = u % l->pieces;
        int64_t i2 = r % d[2], i1 = r / d[2] % d[1], i0 = r / (d[2] * d[1]);
        int64_t k0 = tp_bound(d[3], (int)l->pieces, (int)p), k1 = tp_bound(d[3], (int)l->pieces, (int)p + 1);
        int64_t oa = i0 * ma[0] + i1 * ma[1] + i2 * ma[2] + k0 * ma[3];
        int64_t ob = i0 * mb[0] + i1 * mb[1] + i2 * mb[2] + k0 * mb[3];
        int64_t off = r * d[3] + k0;
        bc_row row = {
            .len = k1 - k0, .sa = ma[3], .sb = mb[3],
            .a = a->data + oa, .b = b->data + ob,
            .y = n->data + off, .gy = n->grad ? n->grad + off : NULL,
            .ga = l->ga ? l->ga + oa : NULL, .gb = l->gb ? l->gb + ob : NULL,
        };
        l->row(&row);
    }
}

/* The fewest outputs worth a second thread. */
enum { BC_GRAIN = 4096 };

/* Runs row over the output of binary node n, on the pool. The gradients of the sources
 * whose bit is set in need are handed to row (need is 0 in forward). Every output is
 * written once, so forward may be cut anywhere. A gradient is cut only where that keeps
 * each of its elements' terms in the same order, so the bits do not depend on the
 * thread count: a row that sums into a broadcast element stays whole, and a source
 * broadcast across rows (several rows adding into one element) runs all on the
 * caller. */
static void bc_run(ag_node *n, bc_row_fn row, unsigned need)
{
    bc_loop l = {.n = n, .row = row, .pieces = 1};
    l.ga = need & 1u ? n->src[0]->grad : NULL;
    l.gb = need & 2u ? n->src[1]->grad : NULL;
    bc_plan(&l);
    AG_ASSERT(l.ma[3] <= 1 && l.mb[3] <= 1); /* ROW_SUM reads the row's other source as an array */
    int shared = 0;
    for (int k = 0; k < 3; k++)
        shared |= l.d[k] > 1 && ((l.ga && l.ma[k] == 0) || (l.gb && l.mb[k] == 0));
    int64_t rows = l.d[0] * l.d[1] * l.d[2];
    if (shared) {
        bc_units(&l, 0, rows);
        return;
    }
    int sums = (l.ga && l.ma[3] == 0) || (l.gb && l.mb[3] == 0);
    if (!sums && l.d[3] >= 2 * BC_GRAIN) l.pieces = l.d[3] / BC_GRAIN;
    tp_for_items(rows * l.pieces, tp_items_holding(BC_GRAIN, l.d[3] / l.pieces), bc_units, &l);
}

/* ---- add, sub, mul, div --------------------------------------------------------- */

/* A forward row: y = A op B over the row, k running over it. The sources' strides are
 * 1 or 0 (bc_run); a loop written for each pair of them vectorizes, one with the strides
 * as variables would not (the DDPM's time embedding, added to every position of its
 * feature maps, is the (1, 0) case). */
#define FW_ROW(name, op)                                                               \
    AG_SIMD_CLONES                                                                     \
    static void name(const bc_row *r)                                                  \
    {                                                                                  \
        const float *a = r->a, *b = r->b;                                              \
        float *y = r->y;                                                               \
        if (r->sa && r->sb)                                                            \
            for (int64_t k = 0; k < r->len; k++) y[k] = a[k] op b[k];                  \
        else if (r->sa)                                                                \
            for (int64_t k = 0; k < r->len; k++) y[k] = a[k] op b[0];                  \
        else                                                                           \
            for (int64_t k = 0; k < r->len; k++) y[k] = a[0] op b[k];                  \
    }

/* A source's gradient over the row: op= term at each output, or, for a source
 * broadcast along the row (stride 0), op= one lane sum (vmath.h) of the row's terms.
 * term(k, SA, SB) reads the sources at strides SA and SB: in a sum, the other source is
 * not broadcast along the row, so its stride is 1, which lets the sum vectorize. As one
 * running sum per channel, the DDPM's time embedding, added to every position of a
 * feature map, costs 10 ms of each training step's backward; in lanes, under 1. */
#define ROW_SUM(g, op, term, SA, SB)                                                   \
    {                                                                                  \
        float s_[VM_LANES] = {0};                                                      \
        int64_t k = 0;                                                                 \
        for (; k + VM_LANES <= r->len; k += VM_LANES)                                  \
            for (int l_ = 0; l_ < VM_LANES; l_++) s_[l_] += term(k + l_, SA, SB);      \
        for (int l_ = 0; k + l_ < r->len; l_++) s_[l_] += term(k + l_, SA, SB);        \
        *r->g op vm_lanes_total(s_);                                                   \
    }
#define ROW_GRAD_A(op, term)                                                           \
    if (r->ga && r->sa == 0)                                                           \
        ROW_SUM(ga, op, term, 0, 1)                                                    \
    else if (r->ga)                                                                    \
        for (int64_t k = 0; k < r->len; k++) r->ga[k * r->sa] op term(k, r->sa, r->sb);
#define ROW_GRAD_B(op, term)                                                           \
    if (r->gb && r->sb == 0)                                                           \
        ROW_SUM(gb, op, term, 1, 0)                                                    \
    else if (r->gb)                                                                    \
        for (int64_t k = 0; k < r->len; k++) r->gb[k * r->sb] op term(k, r->sa, r->sb);

#define GY(k, SA, SB) r->gy[k]
#define GY_A(k, SA, SB) (r->gy[k] * r->a[(k) * (SA)])
#define GY_B(k, SA, SB) (r->gy[k] * r->b[(k) * (SB)])
#define GY_OVER_B(k, SA, SB) (r->gy[k] / r->b[(k) * (SB)])
#define GY_Y_OVER_B(k, SA, SB) (r->gy[k] * r->y[k] / r->b[(k) * (SB)]) /* d(a/b)/db = -y/b */

FW_ROW(add_fw_row, +)
AG_SIMD_CLONES
static void add_bw_row(const bc_row *r)
{
    ROW_GRAD_A(+=, GY)
    ROW_GRAD_B(+=, GY)
}

FW_ROW(sub_fw_row, -)
AG_SIMD_CLONES
static void sub_bw_row(const bc_row *r)
{
    ROW_GRAD_A(+=, GY)
    ROW_GRAD_B(-=, GY)
}

FW_ROW(mul_fw_row, *)
AG_SIMD_CLONES
static void mul_bw_row(const bc_row *r)
{
    ROW_GRAD_A(+=, GY_B)
    ROW_GRAD_B(+=, GY_A)
}

FW_ROW(div_fw_row, /)
AG_SIMD_CLONES
static void div_bw_row(const bc_row *r)
{
    ROW_GRAD_A(+=, GY_OVER_B)
    ROW_GRAD_B(-=, GY_Y_OVER_B)
}

#define BINARY(op)                                                                     \
    static void op##_forward(ag_graph *g, ag_node *n) { bc_run(n, op##_fw_row, 0); }   \
    static void op##_backward(ag_graph *g, ag_node *n, unsigned need)                  \
    {                                                                                  \
        bc_run(n, op##_bw_row, need);                                                  \
    }                                                                                  \
    const ag_op_def ag_def_##op = {.name = #op, .min_src = 2, .max_src = 2,            \
                                     .infer = bc_infer, .forward = op##_forward,       \
                                     .backward = op##_backward};

BINARY(add)
BINARY(sub)
BINARY(mul)
BINARY(div)

/* ---- unary ---------------------------------------------------------------------- */

static int unary_infer(ag_node *n, ag_error *err)
{
    n->shape = n->src[0]->shape;
    n->batched = n->src[0]->batched;
    n->aux_numel = 0;
    return AG_OK;
}

/* torch.nn.Softplus: log(1 + e^(beta x)) / beta, and x itself once beta x > threshold
 * (where the two agree to float precision and the exp would overflow). */
static inline float softplusf(float x, float beta, float threshold)
{
    return beta * x > threshold ? x : log1pf(expf(beta * x)) / beta;
}

/* d/dx x sigmoid(x) = s + x s (1 - s) */
static inline float silu_grad(float x)
{
    float s = vm_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

/* The exact GELU, x Phi(x), Phi the standard normal cdf; its derivative is
 * Phi(x) + x phi(x), phi the pdf. */
static inline float normal_cdf(float x)
{
    return 0.5f * (1.0f + vm_erff(x * (float)M_SQRT1_2));
}

static inline float geluf(float x) { return x * normal_cdf(x); }

static inline float gelu_grad(float x)
{
    const float inv_sqrt_2pi = 0.3989422804014327f;
    float cdf = normal_cdf(x);
    return cdf + x * inv_sqrt_2pi * vm_expf(-0.5f * x * x);
}

/* A unary op from two expressions over x (the input), y (the output, in DERIV only) and
 * p0, p1 (the node's scalars f[0], f[1]): FWD gives y, DERIV gives dy/dx. Each element
 * depends on its own input alone, so the pool may cut the loop anywhere. The scalars
 * are plain locals: read through the node, which the output might alias, or copied into
 * a local array, they keep GCC from vectorizing `x > 0 ? x : p0 * x`. */
#define UNARY_GRAIN (1 << 12)
typedef struct unary_bw {
    const ag_node *n;
    unsigned assign;
} unary_bw;

#define UNARY(op, FWD, DERIV)                                                          \
    AG_SIMD_CLONES                                                                     \
    static void op##_fw_range(void *ctx, int64_t lo, int64_t hi)                       \
    {                                                                                  \
        const ag_node *n = ctx;                                                        \
        const float *xs = n->src[0]->data;                                             \
        float *ys = n->data;                                                           \
        const float p0 = n->f[0], p1 = n->f[1];                                        \
        (void)p0;                                                                      \
        (void)p1;                                                                      \
        for (int64_t k = lo; k < hi; k++) {                                            \
            float x = xs[k];                                                           \
            ys[k] = (FWD);                                                             \
        }                                                                              \
    }                                                                                  \
    static void op##_forward(ag_graph *g, ag_node *n)                                  \
    {                                                                                  \
        tp_for(ag_numel(&n->shape), UNARY_GRAIN, op##_fw_range, n);                    \
    }                                                                                  \
    AG_SIMD_CLONES                                                                     \
    static void op##_bw_range(void *ctx, int64_t lo, int64_t hi)                       \
    {                                                                                  \
        const unary_bw *j = ctx;                                                       \
        const ag_node *n = j->n;                                                       \
        const float *xs = n->src[0]->data, *ys = n->data, *gy = n->grad;               \
        float *gx = n->src[0]->grad;                                                   \
        const float p0 = n->f[0], p1 = n->f[1];                                        \
        (void)p0;                                                                      \
        (void)p1;                                                                      \
        if (j->assign)                                                                 \
            for (int64_t k = lo; k < hi; k++) {                                        \
                float x = xs[k], y = ys[k];                                            \
                (void)x;                                                               \
                (void)y;                                                               \
                gx[k] = gy[k] * (DERIV);                                               \
            }                                                                          \
        else                                                                           \
            for (int64_t k = lo; k < hi; k++) {                                        \
                float x = xs[k], y = ys[k];                                            \
                (void)x;                                                               \
                (void)y;                                                               \
                gx[k] += gy[k] * (DERIV);                                              \
            }                                                                          \
    }                                                                                  \
    static void op##_backward(ag_graph *g, ag_node *n, unsigned need)                  \
    {                                                                                  \
        unary_bw j = {n, g->bw_assign & 1u};                                           \
        if (need & 1u) tp_for(ag_numel(&n->shape), UNARY_GRAIN, op##_bw_range, &j);    \
    }                                                                                  \
    const ag_op_def ag_def_##op = {.name = #op, .min_src = 1, .max_src = 1,            \
                                     .flags = AG_DEF_BW_ASSIGN, .infer = unary_infer,  \
                                     .forward = op##_forward,                          \
                                     .backward = op##_backward,                        \
                                     .range = op##_fw_range};

/*    name        y = FWD                       dy/dx = DERIV */
UNARY(affine,     p0 * x + p1,                  p0)
UNARY(rdiv,       p0 / x,                       -y / x)
UNARY(neg,        -x,                           -1.0f)
UNARY(exp,        vm_expf(x),                   y)
UNARY(log,        logf(x),                      1.0f / x)
UNARY(sqrt,       sqrtf(x),                     0.5f / y)
UNARY(pow,        powf(x, p0),                  p0 * powf(x, p0 - 1.0f))
UNARY(abs,        fabsf(x),                     (float)((x > 0) - (x < 0)))
UNARY(clamp,      fminf(fmaxf(x, p0), p1),      x >= p0 && x <= p1 ? 1.0f : 0.0f)
UNARY(relu,       x > 0 ? x : 0.0f,             x > 0 ? 1.0f : 0.0f)
UNARY(leaky_relu, x > 0 ? x : p0 * x,           x > 0 ? 1.0f : p0)
UNARY(elu,        x > 0 ? x : p0 * expm1f(x),   x > 0 ? 1.0f : y + p0)
UNARY(tanh,       vm_tanhf(x),                  1.0f - y * y)
UNARY(sigmoid,    vm_sigmoidf(x),               y * (1.0f - y))
UNARY(softplus,   softplusf(x, p0, p1),         p0 * x > p1 ? 1.0f : vm_sigmoidf(p0 * x))
UNARY(silu,       x * vm_sigmoidf(x),           silu_grad(x))
UNARY(gelu,       geluf(x),                     gelu_grad(x))

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_unary(ag_graph *g, ag_op op, ag_node *x) { return bd_new1(g, op, x, NULL, NULL); }

ag_node *ag_binary(ag_graph *g, ag_op op, ag_node *a, ag_node *b)
{
    return bd_new2(g, op, a, b, NULL, NULL);
}

ag_node *ag_affine(ag_graph *g, ag_node *x, float scale, float shift)
{
    return bd_new1(g, AG_OP_AFFINE, x, BD_F(scale, shift), NULL);
}

ag_node *ag_rdiv(ag_graph *g, float num, ag_node *x) { return bd_new1(g, AG_OP_RDIV, x, BD_F(num), NULL); }
ag_node *ag_pow(ag_graph *g, ag_node *x, float p) { return bd_new1(g, AG_OP_POW, x, BD_F(p), NULL); }

ag_node *ag_clamp(ag_graph *g, ag_node *x, float lo, float hi)
{
    return bd_new1(g, AG_OP_CLAMP, x, BD_F(lo, hi), NULL);
}

ag_node *ag_leaky_relu(ag_graph *g, ag_node *x, float slope)
{
    return bd_new1(g, AG_OP_LEAKY_RELU, x, BD_F(slope), NULL);
}

ag_node *ag_elu(ag_graph *g, ag_node *x, float alpha) { return bd_new1(g, AG_OP_ELU, x, BD_F(alpha), NULL); }

ag_node *ag_softplus(ag_graph *g, ag_node *x, float beta, float threshold)
{
    return bd_new1(g, AG_OP_SOFTPLUS, x, BD_F(beta, threshold), NULL);
}
