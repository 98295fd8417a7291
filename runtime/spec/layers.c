/* layers.c — the layer table: what a stack entry or a graph-model call can name. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aigc/init.h"
#include "aigc/suggest.h"
#include "eval.h"

/* -------------------------------------------------------------- ranges -- */

static float clampf(double v) { return (float)(isnan(v) ? 0 : v); }

/* The range of an increasing function f on [lo, hi]. */
#define MONOTONE_RANGE(fname, expr)                                                    \
    static void fname(const double *args, float *lo, float *hi)                       \
    {                                                                                 \
        double x = *lo;                                                               \
        *lo = clampf(expr);                                                           \
        x = *hi;                                                                      \
        *hi = clampf(expr);                                                           \
    }

MONOTONE_RANGE(range_relu, x > 0 ? x : 0)
MONOTONE_RANGE(range_leaky, x > 0 ? x : x * args[0])
MONOTONE_RANGE(range_elu, x > 0 ? x : args[0] * expm1(x))
MONOTONE_RANGE(range_tanh, tanh(x))
MONOTONE_RANGE(range_sigmoid, 1 / (1 + exp(-x)))
MONOTONE_RANGE(range_softplus, x * args[0] > args[1] ? x : log1p(exp(args[0] * x)) / args[0])

static void range_same(const double *args, float *lo, float *hi) {}

/* silu and gelu dip below zero by a known amount, then grow like x. */
static void range_silu(const double *args, float *lo, float *hi)
{
    *lo = -0.2785f;
    *hi = *hi > 0 ? *hi : 0;
}

static void range_gelu(const double *args, float *lo, float *hi)
{
    *lo = -0.1700f;
    *hi = *hi > 0 ? *hi : 0;
}

/* Kept values are scaled by 1 / (1 - p); dropped ones are 0. */
static void range_dropout(const double *args, float *lo, float *hi)
{
    double s = 1 / (1 - args[0]);
    *lo = (float)fmin(0, *lo * s);
    *hi = (float)fmax(0, *hi * s);
}

/* ------------------------------------------------ spectral normalization -- */

/* `sn=1` on a linear or conv2d layer: torch.nn.utils.spectral_norm's parametrization.
 * The trained weight is named weight_orig, and the buffers u [out] and v [the rest of
 * the weight's dims] follow the trained ones (param[ntrain], param[ntrain + 1]), under
 * PyTorch's names, so that a state_dict of the wrapped module loads as it is. The
 * layer applies W / sigma (ag_spectral_norm). */
static const char *weight_name(const ly_slot *s, int sn_arg) { return s->args[sn_arg] != 0 ? "weight_orig" : "weight"; }

static void sn_declare(ev_ctx *c, ly_slot *s, const char *prefix, int sn_arg, ag_shape w)
{
    s->ntrain = s->nparam;
    if (s->args[sn_arg] == 0) return;
    char name[256];
    snprintf(name, sizeof name, "%s.weight_u", prefix);
    s->param[s->nparam++] = ag_params_add(&c->p->params, name, ag_shape1(w.d[0]), s->loc);
    snprintf(name, sizeof name, "%s.weight_v", prefix);
    s->param[s->nparam++] = ag_params_add(&c->p->params, name, ag_shape1((int)(ag_numel(&w) / w.d[0])), s->loc);
}

/* The weight the layer applies: W, or W / sigma. */
static ag_node *sn_weight(ev_ctx *c, const ly_slot *s, int sn_arg)
{
    ag_node *w = ag_param(c->g, s->param[0]);
    if (s->args[sn_arg] == 0) return w;
    return ag_spectral_norm(c->g, w, ag_param(c->g, s->param[s->ntrain]), ag_param(c->g, s->param[s->ntrain + 1]),
                            1e-12f);
}

/* u and v as PyTorch draws them: normal, then normalized (eps 1e-12), u first. */
static void sn_init(const ly_slot *s, ag_params *ps, rng *r, int sn_arg)
{
    if (s->args[sn_arg] == 0) return;
    for (int k = s->ntrain; k < s->ntrain + 2; k++) {
        const ag_parameter *b = &ps->p[s->param[k]];
        int64_t n = ag_numel(&b->shape);
        init_normal(r, b->data, n, 0.0f, 1.0f);
        double ss = 0;
        for (int64_t j = 0; j < n; j++) ss += (double)b->data[j] * b->data[j];
        float norm = (float)sqrt(ss), denom = norm > 1e-12f ? norm : 1e-12f;
        for (int64_t j = 0; j < n; j++) b->data[j] /= denom;
    }
}

/* -------------------------------------------------------------- linear -- */

enum { LINEAR_SN = 2 }; /* linear OUT [bias] [sn] */

static int linear_declare(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err)
{
    if (x->shape.ndim < 1)
        return ag_errorf(err, s->loc, "linear: the input is a single number; it needs a feature dimension");
    int in = x->shape.d[x->shape.ndim - 1], out = (int)s->args[0];
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, weight_name(s, LINEAR_SN));
    s->param[s->nparam++] = ag_params_add(&c->p->params, name, ag_shape2(out, in), s->loc);
    if (s->args[1] != 0) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        s->param[s->nparam++] = ag_params_add(&c->p->params, name, ag_shape1(out), s->loc);
    }
    sn_declare(c, s, prefix, LINEAR_SN, ag_shape2(out, in));
    s->params = (int64_t)in * out + (s->args[1] != 0 ? out : 0);
    /* Once per position of a sequence [B, T, in]: x is declared at batch 1. */
    int64_t rows = ag_numel(&x->shape) / in;
    s->flops = (2 * (int64_t)in * out + (s->args[1] != 0 ? out : 0)) * rows;
    return AG_OK;
}

static ag_node *linear_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    ag_node *b = s->ntrain > 1 ? ag_param(c->g, s->param[1]) : NULL;
    return ag_linear(c->g, x, sn_weight(c, s, LINEAR_SN), b);
}

static void linear_init(const ly_slot *s, ag_params *ps, rng *r)
{
    const ag_parameter *w = &ps->p[s->param[0]];
    init_linear(r, w->data, s->ntrain > 1 ? ps->p[s->param[1]].data : NULL, w->shape.d[1],
                w->shape.d[0]);
    sn_init(s, ps, r, LINEAR_SN);
}

/* --------------------------------------------------------- activations -- */

#define ACT_APPLY(fname, call)                                                         \
    static ag_node *fname(ev_ctx *c, const ly_slot *s, ag_node *x) { return call; }

ACT_APPLY(relu_apply, ag_unary(c->g, AG_OP_RELU, x))
ACT_APPLY(leaky_apply, ag_leaky_relu(c->g, x, (float)s->args[0]))
ACT_APPLY(elu_apply, ag_elu(c->g, x, (float)s->args[0]))
ACT_APPLY(tanh_apply, ag_unary(c->g, AG_OP_TANH, x))
ACT_APPLY(sigmoid_apply, ag_unary(c->g, AG_OP_SIGMOID, x))
ACT_APPLY(softplus_apply, ag_softplus(c->g, x, (float)s->args[0], (float)s->args[1]))
ACT_APPLY(silu_apply, ag_unary(c->g, AG_OP_SILU, x))
ACT_APPLY(gelu_apply, ag_unary(c->g, AG_OP_GELU, x))
ACT_APPLY(dropout_apply, ag_dropout(c->g, x, (float)s->args[0]))
ACT_APPLY(flatten_apply, ag_flatten(c->g, x))


/* ---------------------------------------------------------- convolution -- */

static int add_param(ev_ctx *c, ly_slot *s, const char *prefix, const char *what, ag_shape shape)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    s->param[s->nparam++] = ag_params_add(&c->p->params, name, shape, s->loc);
    return s->nparam - 1;
}

static int want_images(const ly_slot *s, const ag_node *x, ag_error *err)
{
    if (x->shape.ndim == 4) return AG_OK;
    char buf[64];
    return ag_errorf(err, s->loc, "%s: the input must be images [B, C, H, W], got %s", s->def->name,
                     ag_shape_str(&x->shape, x->batched, buf, sizeof buf));
}

/* conv2d OUT KERNEL [stride] [padding] [bias] [sn]: weight [OUT, C, K, K] as nn.Conv2d.
 * conv_transpose2d has output_padding where conv2d has bias, and no sn. */
enum { CONV_SN = 5 };

static int conv_declare(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err)
{
    if (want_images(s, x, err)) return AG_ERR;
    int in = x->shape.d[1], out = (int)s->args[0], k = (int)s->args[1];
    int transposed = !strcmp(s->def->name, "conv_transpose2d");
    int has_bias = s->args[transposed ? 5 : 4] != 0;
    ag_shape w = transposed ? ag_shape4(in, out, k, k) : ag_shape4(out, in, k, k);
    add_param(c, s, prefix, transposed ? "weight" : weight_name(s, CONV_SN), w);
    if (has_bias) add_param(c, s, prefix, "bias", ag_shape1(out));
    if (transposed)
        s->ntrain = s->nparam;
    else
        sn_declare(c, s, prefix, CONV_SN, w);
    s->params = (int64_t)in * out * k * k + (has_bias ? out : 0);
    return AG_OK;
}

static ag_node *conv_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    ag_node *b = s->ntrain > 1 ? ag_param(c->g, s->param[1]) : NULL;
    if (!strcmp(s->def->name, "conv_transpose2d"))
        return ag_conv_transpose2d(c->g, x, ag_param(c->g, s->param[0]), b, (int)s->args[2], (int)s->args[3],
                                   (int)s->args[4]);
    return ag_conv2d(c->g, x, sn_weight(c, s, CONV_SN), b, (int)s->args[2], (int)s->args[3]);
}

/* nn.Conv2d and nn.ConvTranspose2d draw like nn.Linear with fan_in taken from the
 * weight's dims 1.. (for the transposed layout that is C_out * K * K). */
static void conv_init(const ly_slot *s, ag_params *ps, rng *r)
{
    const ag_parameter *w = &ps->p[s->param[0]];
    int fan_in = w->shape.d[1] * w->shape.d[2] * w->shape.d[3];
    init_linear(r, w->data, s->ntrain > 1 ? ps->p[s->param[1]].data : NULL, fan_in, w->shape.d[0]);
    if (strcmp(s->def->name, "conv_transpose2d")) sn_init(s, ps, r, CONV_SN);
}

/* A multiply and an add per weight and output position. */
static int64_t conv_flops(const ly_slot *s, const ag_node *y)
{
    /* A transposed convolution multiplies each weight once per input position. */
    int64_t positions = (int64_t)y->shape.d[2] * y->shape.d[3];
    if (!strcmp(s->def->name, "conv_transpose2d")) {
        int k = (int)s->args[1], st = (int)s->args[2], pad = (int)s->args[3], op = (int)s->args[4];
        positions = (int64_t)((y->shape.d[2] + 2 * pad - k - op) / st + 1) * ((y->shape.d[3] + 2 * pad - k - op) / st + 1);
    }
    int64_t weights = s->params - (s->ntrain > 1 ? y->shape.d[1] : 0);
    return 2 * weights * positions + (s->ntrain > 1 ? y->shape.d[1] * positions : 0);
}

/* causal_attention HEADS on qkv [B, T, 3C]: softmax(q k^T / sqrt(D)) v per head, each
 * position attending to itself and the ones before, to [B, T, C]. */
static ag_node *attention_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    return ag_causal_attention(c->g, x, (int)s->args[0]);
}

/* The two products, q k^T and p v, 2 T^2 C each per sample, counted whole as the usual
 * estimates count them (nanoGPT's, PyTorch's profiler) though the mask zeroes half. */
static int64_t attention_flops(const ly_slot *s, const ag_node *y)
{
    int64_t t = y->shape.d[y->shape.ndim - 2], ch = y->shape.d[y->shape.ndim - 1];
    return 4 * t * t * ch;
}

static ag_node *avg_pool_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    return ag_avg_pool2d(c->g, x, (int)s->args[0], (int)s->args[1]);
}

static ag_node *upsample_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    return ag_upsample_nearest2d(c->g, x, (int)s->args[0]);
}

/* reshape D1 [D2 [D3]]: each sample to the given shape, as x.view(B, D1, ...). */
static ag_node *reshape_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    int dims[AG_MAX_DIMS] = {-1}, n = 1;
    for (int k = 0; k < 3 && s->args[k] > 0; k++) dims[n++] = (int)s->args[k];
    return ag_reshape(c->g, x, n, dims);
}

/* -------------------------------------------------------- normalization -- */

/* The affine weight starts at 1 and the bias at 0, as in PyTorch's norm layers. */
static void norm_init(const ly_slot *s, ag_params *ps, rng *r)
{
    const ag_parameter *w = &ps->p[s->param[0]], *b = &ps->p[s->param[1]];
    init_constant(w->data, ag_numel(&w->shape), 1.0f);
    init_zeros(b->data, ag_numel(&b->shape));
    if (s->nparam == 4) { /* batch_norm's running mean 0 and running variance 1 */
        init_zeros(ps->p[s->param[2]].data, ag_numel(&ps->p[s->param[2]].shape));
        init_constant(ps->p[s->param[3]].data, ag_numel(&ps->p[s->param[3]].shape), 1.0f);
    }
}

static int norm_declare(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err)
{
    const char *kind = s->def->name;
    if (x->shape.ndim < 2) return ag_errorf(err, s->loc, "%s: the input needs a feature dimension", kind);
    int ch = !strcmp(kind, "layer_norm") ? x->shape.d[x->shape.ndim - 1] : x->shape.d[1];
    if (!strcmp(kind, "group_norm") && ch % (int)s->args[0])
        return ag_errorf(err, s->loc, "group_norm: %d channels do not split into %g groups", ch, s->args[0]);
    add_param(c, s, prefix, "weight", ag_shape1(ch));
    add_param(c, s, prefix, "bias", ag_shape1(ch));
    s->ntrain = 2;
    if (!strcmp(kind, "batch_norm")) {
        /* PyTorch's buffer names, so that a state_dict loads as it is. */
        add_param(c, s, prefix, "running_mean", ag_shape1(ch));
        add_param(c, s, prefix, "running_var", ag_shape1(ch));
    }
    s->params = 2 * (int64_t)ch;
    return AG_OK;
}

static ag_node *norm_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    ag_node *w = ag_param(c->g, s->param[0]), *b = ag_param(c->g, s->param[1]);
    const char *kind = s->def->name;
    if (!strcmp(kind, "layer_norm")) return ag_layer_norm(c->g, x, w, b, (float)s->args[0]);
    if (!strcmp(kind, "group_norm")) return ag_group_norm(c->g, x, (int)s->args[0], w, b, (float)s->args[1]);
    return ag_batch_norm(c->g, x, w, b, ag_param(c->g, s->param[2]), ag_param(c->g, s->param[3]),
                         (float)s->args[0], (float)s->args[1]);
}

/* ----------------------------------------------------------------- MADE -- */

/* Masked linear layers of MADE (Germain et al.): each unit has a degree; input d has
 * degree m(d) in 1..D, the autoregressive order, and a unit sees the units below of
 * degree <= its own -- strictly less for the output layer, so output d depends only on
 * the inputs before d in the order. The first masked layer of a model fixes the order
 * (`order`: natural, m(d) = d + 1; reversed; random, a permutation); each hidden layer's
 * degrees (`connect`) spread evenly over [lo, D-1] (even), or are drawn uniformly there
 * (random), lo being the smallest degree below, as in the paper. Random choices come
 * from the spec's seed and the layer's `seed`. The mask is a buffer, saved with the
 * weights. */
enum { MADE_NATURAL, MADE_REVERSED, MADE_RANDOM_ORDER };    /* made_orders[k] */
enum { MADE_EVEN_DEGREES, MADE_RANDOM_DEGREES };            /* made_connects[k] */
static const char *const made_orders[] = {"natural", "reversed", "random", NULL};
static const char *const made_connects[] = {"even", "random", NULL};

static int made_declare(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err)
{
    int in = x->shape.d[x->shape.ndim - 1], out = (int)s->args[0];
    int output = !strcmp(s->def->name, "made_output");
    int order = (int)s->args[1], connect = (int)s->args[2];
    ar_arena *a = &c->p->params.arena;
    rng r;
    rng_seed(&r, c->p->spec->seed ^ (uint64_t)s->args[3] * 0x9e3779b97f4a7c15ull ^ 0x3ade);
    if (!c->made_deg) { /* the first masked layer: the inputs themselves */
        int *d = ar_alloc(a, (size_t)in * sizeof *d);
        for (int k = 0; k < in; k++) d[k] = order == MADE_REVERSED ? in - k : k + 1;
        if (order == MADE_RANDOM_ORDER)
            for (int k = in - 1; k > 0; k--) {
                int j = (int)rng_below(&r, (uint64_t)k + 1), t = d[k];
                d[k] = d[j], d[j] = t;
            }
        c->made_deg = c->made_order = d, c->made_n = c->made_d = in;
    } else if (order != MADE_NATURAL) {
        return ag_errorf(err, s->loc, "%s: 'order' belongs to the first masked layer of the model, which fixes the "
                         "inputs' order", s->def->name);
    }
    if (c->made_n != in)
        return ag_errorf(err, s->loc, "%s: the input has %d features but the masked layer before gave %d",
                         s->def->name, in, c->made_n);
    int D = c->made_d;
    if (output && out % D)
        return ag_errorf(err, s->loc, "made_output: %d outputs are not a multiple of the %d inputs", out, D);
    int lo = D;
    for (int k = 0; k < in; k++) lo = c->made_deg[k] < lo ? c->made_deg[k] : lo;
    if (lo > D - 1) lo = D - 1;
    if (lo < 1) lo = 1;
    int *deg = ar_alloc(a, (size_t)out * sizeof *deg);
    /* Evenly spread degrees include both ends, so that every part of the order has units
     * to pass it on, however few the units. */
    for (int k = 0; k < out; k++) {
        if (output)
            deg[k] = c->made_order[k % D];
        else if (connect == MADE_RANDOM_DEGREES && D > lo)
            deg[k] = lo + (int)rng_below(&r, (uint64_t)(D - lo));
        else
            deg[k] = out > 1 && D - 1 > lo ? lo + (int)((int64_t)k * (D - 1 - lo) / (out - 1)) : lo;
    }
    s->deg_in = c->made_deg;
    s->deg_out = deg;
    c->made_deg = deg, c->made_n = out;
    add_param(c, s, prefix, "weight", ag_shape2(out, in));
    add_param(c, s, prefix, "bias", ag_shape1(out));
    s->ntrain = 2;
    add_param(c, s, prefix, "mask", ag_shape2(out, in));
    s->params = (int64_t)in * out + out;
    s->flops = 2 * (int64_t)in * out + out;
    return AG_OK;
}

static ag_node *made_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    return ag_masked_linear(c->g, x, ag_param(c->g, s->param[0]), ag_param(c->g, s->param[2]),
                            ag_param(c->g, s->param[1]));
}

static void made_init(const ly_slot *s, ag_params *ps, rng *r)
{
    const ag_parameter *w = &ps->p[s->param[0]], *m = &ps->p[s->param[2]];
    init_linear(r, w->data, ps->p[s->param[1]].data, w->shape.d[1], w->shape.d[0]);
    int out = m->shape.d[0], in = m->shape.d[1];
    int strict = !strcmp(s->def->name, "made_output");
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++)
            m->data[(int64_t)o * in + i] = strict ? s->deg_out[o] > s->deg_in[i] : s->deg_out[o] >= s->deg_in[i];
}

/* ------------------------------------------------------------ embedding -- */

/* embedding VOCAB DIM: rows of a [VOCAB, DIM] table picked by integer inputs; N(0, 1)
 * at the start, as nn.Embedding. */
static int embedding_declare(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err)
{
    add_param(c, s, prefix, "weight", ag_shape2((int)s->args[0], (int)s->args[1]));
    s->ntrain = 1;
    s->params = (int64_t)s->args[0] * (int64_t)s->args[1];
    return AG_OK;
}

static ag_node *embedding_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    return ag_embedding(c->g, ag_param(c->g, s->param[0]), x);
}

static void embedding_init(const ly_slot *s, ag_params *ps, rng *r)
{
    const ag_parameter *w = &ps->p[s->param[0]];
    init_normal(r, w->data, ag_numel(&w->shape), 0.0f, 1.0f);
}

/* pos_embedding: a learned [T, C] table added to x [B, T, C], one row per position
 * (GPT-2's wpe, with the positions 0 .. T-1 of every window); N(0, 1) at the start, as
 * nn.Embedding. */
static int pos_embedding_declare(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err)
{
    if (x->shape.ndim != 3) {
        char buf[64];
        return ag_errorf(err, s->loc, "pos_embedding: the input must be [B, T, C], got %s",
                         ag_shape_str(&x->shape, x->batched, buf, sizeof buf));
    }
    add_param(c, s, prefix, "weight", ag_shape2(x->shape.d[1], x->shape.d[2]));
    s->ntrain = 1;
    s->params = (int64_t)x->shape.d[1] * x->shape.d[2];
    return AG_OK;
}

static ag_node *pos_embedding_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    return ag_binary(c->g, AG_OP_ADD, x, ag_param(c->g, s->param[0]));
}

static ag_node *time_embedding_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    return ag_timestep_embedding(c->g, x, (int)s->args[0]);
}

/* ---------------------------------------------------------------- table -- */

/* A layer's parameters (aigc/args.h): numbers with a default and a range [lo, hi],
 * whole numbers, or words; the first `required` must be given. */
#define NUM(n, d, l, h) {.name = n, .dflt = d, .lo = l, .hi = h}
#define WHOLE(n, d, l, h) {.name = n, .dflt = d, .lo = l, .hi = h, .whole = 1}
#define WORDS(n, w) {.name = n, .words = w}
#define ARGS(required, ...)                                                                  \
    .args = {.form = AB_LAYER, .nrequired = (required),                                  \
             .nparams = (int)(sizeof((const ab_param[]){__VA_ARGS__}) / sizeof(ab_param)), \
             .params = (const ab_param[]){__VA_ARGS__}}
#define MADE_ARGS                                                                          \
    ARGS(1, WHOLE("out", 0, 1, 1 << 20), WORDS("order", made_orders),                 \
         WORDS("connect", made_connects), WHOLE("seed", 0, 0, 1 << 30))
static_assert((int)AB_MAX_PARAMS == (int)SP_MAX_LAYER_ARGS, "a layer's arguments fit its slot's args");
static const ly_def layers[] = {
    {.name = "linear", ARGS(1, WHOLE("out", 0, 1, 1 << 24), NUM("bias", 1, 0, 1), WHOLE("sn", 0, 0, 1)),
     .declare = linear_declare,
     .apply = linear_apply, .init = linear_init},
    {.name = "relu", .apply = relu_apply, .range = range_relu},
    {.name = "leaky_relu", ARGS(0, NUM("slope", 0.01, 0, INFINITY)), .apply = leaky_apply, .range = range_leaky},
    {.name = "elu", ARGS(0, NUM("alpha", 1.0, 0, INFINITY)), .apply = elu_apply, .range = range_elu},
    {.name = "tanh", .apply = tanh_apply, .range = range_tanh},
    {.name = "sigmoid", .apply = sigmoid_apply, .range = range_sigmoid},
    {.name = "softplus", ARGS(0, NUM("beta", 1, 1e-6, INFINITY), NUM("threshold", 20, 0, INFINITY)),
     .apply = softplus_apply, .range = range_softplus},
    {.name = "silu", .apply = silu_apply, .range = range_silu},
    {.name = "gelu", .apply = gelu_apply, .range = range_gelu},
    {.name = "dropout", ARGS(0, NUM("p", 0.5, 0, 0.999)), .apply = dropout_apply, .range = range_dropout},
    {.name = "flatten", .apply = flatten_apply, .range = range_same},
    {.name = "reshape", ARGS(1, WHOLE("d1", 0, 1, 1 << 24), WHOLE("d2", 0, 0, 1 << 24), WHOLE("d3", 0, 0, 1 << 24)),
     .apply = reshape_apply, .range = range_same},
    {.name = "conv2d",
     ARGS(2, WHOLE("out", 0, 1, 1 << 16), WHOLE("kernel", 0, 1, 64), WHOLE("stride", 1, 1, 64),
          WHOLE("padding", 0, 0, 64), NUM("bias", 1, 0, 1), WHOLE("sn", 0, 0, 1)),
     .declare = conv_declare, .apply = conv_apply, .init = conv_init, .flops = conv_flops},
    {.name = "conv_transpose2d",
     ARGS(2, WHOLE("out", 0, 1, 1 << 16), WHOLE("kernel", 0, 1, 64), WHOLE("stride", 1, 1, 64),
          WHOLE("padding", 0, 0, 64), WHOLE("output_padding", 0, 0, 63), NUM("bias", 1, 0, 1)),
     .declare = conv_declare, .apply = conv_apply, .init = conv_init, .flops = conv_flops},
    {.name = "avg_pool", ARGS(1, WHOLE("kernel", 0, 1, 64), WHOLE("stride", 0, 0, 64)), .apply = avg_pool_apply,
     .range = range_same},
    {.name = "upsample", ARGS(1, WHOLE("scale", 0, 1, 64)), .apply = upsample_apply, .range = range_same},
    {.name = "layer_norm", ARGS(0, NUM("eps", 1e-5, 0, 1)), .declare = norm_declare, .apply = norm_apply,
     .init = norm_init},
    {.name = "group_norm", ARGS(1, WHOLE("groups", 0, 1, 1 << 16), NUM("eps", 1e-5, 0, 1)), .declare = norm_declare,
     .apply = norm_apply, .init = norm_init},
    {.name = "batch_norm", ARGS(0, NUM("eps", 1e-5, 0, 1), NUM("momentum", 0.1, 0, 1)), .declare = norm_declare,
     .apply = norm_apply, .init = norm_init},
    {.name = "made", MADE_ARGS, .declare = made_declare, .apply = made_apply, .init = made_init},
    {.name = "made_output", MADE_ARGS, .declare = made_declare, .apply = made_apply, .init = made_init},
    {.name = "embedding", ARGS(2, WHOLE("vocab", 0, 1, 1 << 24), WHOLE("dim", 0, 1, 1 << 16)),
     .declare = embedding_declare, .apply = embedding_apply, .init = embedding_init},
    {.name = "causal_attention", ARGS(1, WHOLE("heads", 0, 1, 1 << 16)), .apply = attention_apply,
     .flops = attention_flops},
    {.name = "time_embedding", ARGS(1, WHOLE("dim", 0, 2, 1 << 16)), .apply = time_embedding_apply},
    {.name = "pos_embedding", .declare = pos_embedding_declare, .apply = pos_embedding_apply,
     .init = embedding_init},
};
#undef MADE_ARGS
#undef ARGS
#undef WORDS
#undef WHOLE
#undef NUM

const ly_def *ly_find(const char *name)
{
    for (size_t k = 0; k < AG_COUNTOF(layers); k++)
        if (strcmp(layers[k].name, name) == 0) return &layers[k];
    return NULL;
}

void ly_offer_names(void *b)
{
    for (size_t k = 0; k < AG_COUNTOF(layers); k++) sg_offer(b, layers[k].name);
}

int ly_arg_index(const ly_def *d, const char *key, int pos) { return key ? ab_index(&d->args, key) : pos; }

int ly_takes_words(const ly_def *d, int at) { return at >= 0 && at < d->args.nparams && d->args.params[at].words; }

int ly_args(const ly_def *d, const sp_arg *in, int n, double *args, ag_loc loc, ag_error *err)
{
    ab_state st = {.nargs = n};
    ab_defaults(&d->args, args);
    for (int k = 0; k < n; k++) {
        const sp_arg *a = &in[k];
        int at = ab_place(&d->args, d->name, &st, a->key, a->loc, a->key_loc, err);
        if (at < 0 || ab_number(&d->args, d->name, at, a->word, a->num, a->loc, &args[at], err)) return AG_ERR;
    }
    return ab_missing(&d->args, d->name, &st, loc, err);
}

int ly_apply(ev_ctx *c, const ly_def *d, const double *args, const pv *x, ag_loc loc, pv *out,
             ag_error *err)
{
    pg_model *m = c->model;
    AG_ASSERT(m);
    ly_slot *s;
    if (!m->declared) {
        if (m->nslots == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 16;
            m->slots = ag_xrealloc(m->slots, (size_t)m->cap * sizeof *m->slots);
        }
        s = &m->slots[m->nslots++];
        memset(s, 0, sizeof *s);
        s->def = d;
        s->loc = loc;
        memcpy(s->args, args, sizeof s->args);
        /* Stacks name parameters by position, like torch.nn.Sequential; graph models
         * by node, numbered from the second layer with parameters in one node. */
        char prefix[200], label[96];
        if (c->node && c->node_layers == 0)
            snprintf(prefix, sizeof prefix, "%s.%s", m->spec->name, c->node);
        else if (c->node)
            snprintf(prefix, sizeof prefix, "%s.%s.%d", m->spec->name, c->node, c->node_layers);
        else
            snprintf(prefix, sizeof prefix, "%s.%d", m->spec->name, c->layer_index);
        int k = snprintf(label, sizeof label, "%s%s%s", c->node ? c->node : "", c->node ? ": " : "", d->name);
        /* Arguments by position as long as none was left out; after a default left
         * out, and for words, by name: "conv2d 16 5 padding=2", not "conv2d 16 5 2",
         * which reads as a stride. */
        for (int j = 0, named = 0; j < d->args.nparams && k < (int)sizeof label; j++) {
            size_t left = sizeof label - (size_t)k;
            const ab_param *p = &d->args.params[j];
            if (j >= d->args.nrequired && args[j] == p->dflt) {
                named = 1;
                continue;
            }
            named |= p->words != NULL;
            if (p->words)
                k += snprintf(label + k, left, " %s=%s", p->name, ab_word(&d->args, j, args[j]));
            else if (named)
                k += snprintf(label + k, left, " %s=%g", p->name, args[j]);
            else
                k += snprintf(label + k, left, " %g", args[j]);
        }
        s->label = ar_strdup(&c->p->params.arena, label);  /* lives as long as the program */
        if (d->declare && d->declare(c, s, x->node, prefix, err)) return AG_ERR;
        /* Each layer holds at most 2^48 values (sizes are capped at 2^24): a store past
         * 2^40 is refused here, long before its count could overflow. */
        if (c->p->params.total > (int64_t)1 << 40)
            return ag_errorf(err, loc, "the models have more than 2^40 parameters (%lld); no machine holds them",
                             (long long)c->p->params.total);
    } else {
        AG_ASSERT(c->cursor < m->nslots && m->slots[c->cursor].def == d);
        s = &m->slots[c->cursor];
    }
    c->cursor++;
    if (c->node && d->declare) c->node_layers++;
    ag_graph_set_loc(c->g, loc);
    ag_node *y = d->apply(c, s, x->node);
    if (!y) {
        *err = c->g->err;
        return AG_ERR;
    }
    if (!m->declared) {
        s->out = y->shape;
        s->out_batched = y->batched;
        int64_t per = ag_numel(&y->shape) / (y->batched && y->shape.d[0] ? y->shape.d[0] : 1);
        if (d->flops)
            s->flops = d->flops(s, y);
        else if (!d->declare || !s->flops)
            s->flops = per;
    }
    float lo = x->lo, hi = x->hi;
    if (d->range)
        d->range(s->args, &lo, &hi);
    else
        lo = -INFINITY, hi = INFINITY;
    *out = ev_tensor(y, lo, hi, loc);
    return AG_OK;
}
