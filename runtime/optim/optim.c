/* optim.c — the update rules, one per kind, the clipping around them, and the
 * machinery that walks them over parameter groups. Each rule is PyTorch 1.13's
 * _single_tensor_<kind> written out per element; the comments quote the PyTorch line
 * each statement stands for. PyTorch's vector kernels fuse some multiply-adds (add with
 * alpha, addcmul), ours round twice: the results differ by an ulp per operation, not in
 * formula. */
#include "aigc/optim.h"
#include "aigc/pool.h"

#include <math.h>
#include <string.h>

/* Per-step, per-group coefficients: computed in double as Python does, rounded to
 * float once, as PyTorch rounds a Python scalar when it meets a float tensor. */
typedef struct opt_coef {
    float wd;               /* L2 weight decay added to the gradient */
    float decay;            /* adamw: 1 - lr * wd */
    float momentum, one_minus_dampening, neg_lr;
    int has_momentum, first, nesterov; /* sgd; first: the buffer's first step */
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bias_correction2_sqrt, eps, neg_step_size;
    int amsgrad;
    float alpha, one_minus_alpha; /* rmsprop; momentum and eps as above */
    int centered;
} opt_coef;

/* s is slice 0 of this range's state; slice k starts at s + k * stride. */
typedef void (*opt_update_fn)(const opt_coef *c, float *p, const float *g, float *s,
                              int64_t stride, int64_t n);

/* ---- SGD ------------------------------------------------------------------------------ */

static void sgd_coef(opt_coef *c, const opt_hyper *h, const opt_group *gr, int64_t step)
{
    c->wd = (float)gr->weight_decay;
    c->momentum = (float)h->momentum;
    c->one_minus_dampening = (float)(1.0 - h->dampening);
    c->neg_lr = (float)-gr->lr;
    c->has_momentum = h->momentum != 0;
    c->first = step == 1;
    c->nesterov = h->nesterov;
}

static void sgd_update(const opt_coef *c, float *p, const float *g, float *buf, int64_t stride,
                       int64_t n)
{
    if (!c->has_momentum) {
        for (int64_t k = 0; k < n; k++) {
            float d = g[k] + c->wd * p[k]; /* d_p = d_p.add(param, alpha=weight_decay) */
            p[k] = p[k] + c->neg_lr * d;   /* param.add_(d_p, alpha=-lr) */
        }
        return;
    }
    for (int64_t k = 0; k < n; k++) {
        float d = g[k] + c->wd * p[k];
        /* The buffer starts as a copy of d_p, not as momentum * 0 + (1 - dampening) d_p. */
        if (c->first)
            buf[k] = d;
        else
            buf[k] = buf[k] * c->momentum + c->one_minus_dampening * d; /* mul_, add_ */
        d = c->nesterov ? d + c->momentum * buf[k] : buf[k];
        p[k] = p[k] + c->neg_lr * d;
    }
}

static int sgd_slices(const opt_hyper *h) { return h->momentum != 0 ? 1 : 0; }

/* ---- Adam and AdamW ------------------------------------------------------------------ */

static void adam_coef(opt_coef *c, const opt_hyper *h, const opt_group *gr, int64_t step)
{
    double bias_correction1 = 1.0 - pow(h->beta1, (double)step);
    double bias_correction2 = 1.0 - pow(h->beta2, (double)step);
    c->wd = (float)gr->weight_decay;
    c->decay = (float)(1.0 - gr->lr * gr->weight_decay);
    c->beta1 = (float)h->beta1;
    c->one_minus_beta1 = (float)(1.0 - h->beta1);
    c->beta2 = (float)h->beta2;
    c->one_minus_beta2 = (float)(1.0 - h->beta2);
    c->bias_correction2_sqrt = (float)sqrt(bias_correction2);
    c->eps = (float)h->eps;
    c->neg_step_size = (float)-(gr->lr / bias_correction1);
    c->amsgrad = h->amsgrad;
}

/* The moments and the step shared by Adam and AdamW, for one element whose gradient
 * (with Adam's L2 term already in) is grad. */
static inline float adam_element(const opt_coef *c, float p, float grad, float *m, float *v,
                                 float *vmax)
{
    *m = *m * c->beta1 + c->one_minus_beta1 * grad;         /* exp_avg.mul_(b1).add_(g, 1-b1) */
    *v = *v * c->beta2 + c->one_minus_beta2 * grad * grad;  /* .mul_(b2).addcmul_(g, g, 1-b2) */
    float v_used = *v;
    if (vmax) {
        *vmax = *v > *vmax ? *v : *vmax;                   /* torch.maximum(max, v, out=max) */
        v_used = *vmax;
    }
    float denom = sqrtf(v_used) / c->bias_correction2_sqrt + c->eps;
    return p + c->neg_step_size * *m / denom;               /* addcdiv_(m, denom, -step_size) */
}

/* The loops are written once per amsgrad setting, with restrict pointers and no branch
 * inside, so that the compiler vectorizes them: Adam touches every parameter at every
 * step. Vector sqrt and division round exactly like the scalar ones. Where the arrays
 * are in cache they are most of Adam's time, and the widest clone (AG_SIMD_CLONES)
 * matters; where they come from memory, memory sets the pace. */

AG_SIMD_CLONES
static void adam_update(const opt_coef *c, float *restrict p, const float *restrict g,
                        float *restrict s, int64_t stride, int64_t n)
{
    float *restrict m = s, *restrict v = s + stride, *restrict vmax = s + 2 * stride;
    if (c->amsgrad)
        for (int64_t k = 0; k < n; k++) /* grad = grad.add(param, alpha=weight_decay) */
            p[k] = adam_element(c, p[k], g[k] + c->wd * p[k], &m[k], &v[k], &vmax[k]);
    else
        for (int64_t k = 0; k < n; k++)
            p[k] = adam_element(c, p[k], g[k] + c->wd * p[k], &m[k], &v[k], NULL);
}

AG_SIMD_CLONES
static void adamw_update(const opt_coef *c, float *restrict p, const float *restrict g,
                         float *restrict s, int64_t stride, int64_t n)
{
    float *restrict m = s, *restrict v = s + stride, *restrict vmax = s + 2 * stride;
    if (c->amsgrad)
        for (int64_t k = 0; k < n; k++) /* param.mul_(1 - lr * weight_decay) first */
            p[k] = adam_element(c, p[k] * c->decay, g[k], &m[k], &v[k], &vmax[k]);
    else
        for (int64_t k = 0; k < n; k++)
            p[k] = adam_element(c, p[k] * c->decay, g[k], &m[k], &v[k], NULL);
}

static int adam_slices(const opt_hyper *h) { return h->amsgrad ? 3 : 2; }

/* ---- RMSprop -------------------------------------------------------------------------- */

static void rmsprop_coef(opt_coef *c, const opt_hyper *h, const opt_group *gr, int64_t step)
{
    c->wd = (float)gr->weight_decay;
    c->alpha = (float)h->alpha;
    c->one_minus_alpha = (float)(1.0 - h->alpha);
    c->eps = (float)h->eps;
    c->momentum = (float)h->momentum;
    c->has_momentum = h->momentum > 0;
    c->centered = h->centered;
    c->neg_lr = (float)-gr->lr;
}

/* Slices: 0 square_avg, then the momentum buffer if momentum > 0, then grad_avg if
 * centered. */
static void rmsprop_update(const opt_coef *c, float *p, const float *g, float *s, int64_t stride,
                           int64_t n)
{
    float *sq = s, *buf = s + stride, *gavg = s + (c->has_momentum ? 2 : 1) * stride;
    for (int64_t k = 0; k < n; k++) {
        float grad = g[k] + c->wd * p[k];                  /* grad.add(param, alpha=wd) */
        sq[k] = sq[k] * c->alpha + c->one_minus_alpha * grad * grad; /* mul_(a).addcmul_ */
        float avg;
        if (c->centered) {
            gavg[k] = gavg[k] * c->alpha + c->one_minus_alpha * grad; /* mul_(a).add_ */
            avg = sqrtf(sq[k] - gavg[k] * gavg[k]);  /* addcmul(ga, ga, value=-1).sqrt_() */
        } else {
            avg = sqrtf(sq[k]);
        }
        avg = avg + c->eps;
        if (c->has_momentum) {
            buf[k] = buf[k] * c->momentum + grad / avg;     /* mul_(m).addcdiv_(grad, avg) */
            p[k] = p[k] + c->neg_lr * buf[k];               /* param.add_(buf, alpha=-lr) */
        } else {
            p[k] = p[k] + c->neg_lr * (grad / avg);         /* addcdiv_(grad, avg, -lr) */
        }
    }
}

static int rmsprop_slices(const opt_hyper *h) { return 1 + (h->momentum > 0) + (h->centered != 0); }

/* ---- the kinds ------------------------------------------------------------------------ */

typedef struct opt_def {
    const char *name;
    opt_hyper defaults;
    int (*slices)(const opt_hyper *h);
    void (*coef)(opt_coef *c, const opt_hyper *h, const opt_group *gr, int64_t step);
    opt_update_fn update;
} opt_def;

static const opt_def opt_defs[OPT_COUNT] = {
    [OPT_SGD] = {"sgd", {.lr = 1e-3}, sgd_slices, sgd_coef, sgd_update},
    [OPT_ADAM] = {"adam", {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
                  adam_slices, adam_coef, adam_update},
    [OPT_ADAMW] = {"adamw",
                   {.lr = 1e-3, .weight_decay = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
                   adam_slices, adam_coef, adamw_update},
    [OPT_RMSPROP] = {"rmsprop", {.lr = 1e-2, .alpha = 0.99, .eps = 1e-8}, rmsprop_slices,
                     rmsprop_coef, rmsprop_update},
};

opt_hyper opt_defaults(opt_kind kind)
{
    AG_ASSERT(kind >= 0 && kind < OPT_COUNT);
    return opt_defs[kind].defaults;
}

opt_kind opt_kind_by_name(const char *name)
{
    for (int k = 0; k < OPT_COUNT; k++)
        if (strcmp(opt_defs[k].name, name) == 0) return (opt_kind)k;
    return OPT_COUNT;
}

const char *opt_kind_name(opt_kind kind)
{
    AG_ASSERT(kind >= 0 && kind < OPT_COUNT);
    return opt_defs[kind].name;
}

/* ---- hyper-parameters a spec may set ------------------------------------------------ */

#define SGD_K (1u << OPT_SGD)
#define ADAM_K ((1u << OPT_ADAM) | (1u << OPT_ADAMW))
#define RMS_K (1u << OPT_RMSPROP)
#define ALL_K (SGD_K | ADAM_K | RMS_K)
#define F(name, lo, hi, open, kinds) {#name, offsetof(opt_hyper, name), 0, lo, hi, open, kinds}
#define B(name, kinds) {#name, offsetof(opt_hyper, name), 1, 0, 1, 0, kinds}

/* PyTorch's checks: lr, eps, weight_decay, momentum, alpha >= 0 and betas in [0, 1).
 * RMSprop's alpha above 1 would grow square_avg without bound: refused too. A clip of
 * 0 is off. */
const opt_field opt_fields[] = {
    F(lr, 0, OPT_LR_MAX, 0, ALL_K),
    F(weight_decay, 0, INFINITY, 0, ALL_K),
    F(momentum, 0, INFINITY, 0, SGD_K | RMS_K),
    F(dampening, 0, 1, 0, SGD_K),
    B(nesterov, SGD_K),
    F(beta1, 0, 1, 1, ADAM_K),
    F(beta2, 0, 1, 1, ADAM_K),
    F(eps, 0, INFINITY, 0, ADAM_K | RMS_K),
    B(amsgrad, ADAM_K),
    F(alpha, 0, 1, 0, RMS_K),
    B(centered, RMS_K),
    F(clip_grad_norm, 0, INFINITY, 0, ALL_K),
    F(clip_weights, 0, INFINITY, 0, ALL_K),
};
const int opt_nfields = (int)AG_COUNTOF(opt_fields);

#undef F
#undef B

const opt_field *opt_field_by_name(opt_kind kind, const char *name)
{
    for (int k = 0; k < opt_nfields; k++)
        if ((opt_fields[k].kinds >> kind & 1u) && strcmp(opt_fields[k].name, name) == 0)
            return &opt_fields[k];
    return NULL;
}

int opt_check_value(opt_kind kind, const opt_field *f, double x, ag_loc loc, ag_error *err)
{
    int above = f->hi_open ? !(x < f->hi) : !(x <= f->hi);
    if (x >= f->lo && !above && isfinite(x)) return AG_OK;
    if (isinf(f->hi))
        return ag_errorf(err, loc, "%s: %s must be a finite number >= %g, got %g", opt_defs[kind].name, f->name,
                         f->lo, x);
    return ag_errorf(err, loc, "%s: %s must be in [%g, %g%c, got %g", opt_defs[kind].name, f->name, f->lo,
                     f->hi, f->hi_open ? ')' : ']', x);
}

int opt_check(opt_kind kind, const opt_hyper *h, ag_loc loc, ag_error *err)
{
    for (int k = 0; k < opt_nfields; k++) {
        const opt_field *f = &opt_fields[k];
        if (!(f->kinds >> kind & 1u) || f->is_bool) continue;
        double x;
        memcpy(&x, (const char *)h + f->offset, sizeof x);
        if (opt_check_value(kind, f, x, loc, err)) return AG_ERR;
    }
    if (kind == OPT_SGD && h->nesterov && (h->momentum <= 0 || h->dampening != 0))
        return ag_errorf(err, loc,
                         "sgd: nesterov momentum needs momentum > 0 and dampening 0 "
                         "(got momentum %g, dampening %g)",
                         h->momentum, h->dampening);
    return AG_OK;
}

/* ---- groups and steps ----------------------------------------------------------------- */

int opt_init(opt_optimizer *o, opt_kind kind, const opt_hyper *h, ag_params *ps,
             const opt_group_spec *groups, int ngroups, ag_loc loc, ag_error *err)
{
    AG_ASSERT(kind >= 0 && kind < OPT_COUNT && ps->data && ngroups > 0);
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->h = *h;
    o->ps = ps;
    ar_init(&o->arena, 0);
    char *seen = ar_alloc(&o->arena, (size_t)ps->n + 1);
    o->ngroups = ngroups;
    o->groups = ar_alloc(&o->arena, (size_t)ngroups * sizeof *o->groups);
    for (int gi = 0; gi < ngroups; gi++) {
        const opt_group_spec *gs = &groups[gi];
        opt_group *gr = &o->groups[gi];
        if (gs->nparams <= 0) {
            opt_free(o);
            return ag_errorf(err, loc, "%s: parameter group %d has no parameters",
                             opt_kind_name(kind), gi);
        }
        gr->lr = gs->lr;
        gr->weight_decay = gs->weight_decay;
        gr->ranges = ar_alloc(&o->arena, (size_t)gs->nparams * sizeof *gr->ranges);
        for (int j = 0; j < gs->nparams; j++) {
            int pi = gs->params[j];
            AG_ASSERT(pi >= 0 && pi < ps->n);
            if (seen[pi]) {
                opt_free(o);
                return ag_errorf(err, loc,
                                 "%s: parameter %s is listed twice (each may appear once, "
                                 "in one group)",
                                 opt_kind_name(kind), ps->p[pi].name);
            }
            seen[pi] = 1;
            const ag_parameter *p = &ps->p[pi];
            int64_t n = ag_numel(&p->shape);
            gr->ranges[gr->nranges++] =
                (opt_range){p->offset, n, o->covered, p->shape.ndim == 2 ? p->shape.d[0] : 0};
            o->covered += n;
        }
    }
    o->nslices = opt_defs[kind].slices(h);
    if (o->nslices)
        o->state = ar_alloc(&o->arena, (size_t)(o->nslices * o->covered) * sizeof(float));
    return AG_OK;
}

void opt_free(opt_optimizer *o)
{
    ar_free(&o->arena);
    memset(o, 0, sizeof *o);
}

/* One range of one group, cut into chunks for the pool: every element's update reads
 * only its own values, so the cut changes no bit. */
typedef struct opt_job {
    opt_update_fn update;
    const opt_coef *c;
    float *p, *s;
    const float *g;
    int64_t stride;
    int64_t row;            /* elements per row, for opt_rows */
} opt_job;

static void opt_piece(void *ctx, int64_t lo, int64_t hi)
{
    const opt_job *j = ctx;
    j->update(j->c, j->p + lo, j->g + lo, j->s ? j->s + lo : NULL, j->stride, hi - lo);
}

/* Rows [lo, hi) of a parameter. */
static void opt_rows(void *ctx, int64_t lo, int64_t hi)
{
    const opt_job *j = ctx;
    opt_piece(ctx, lo * j->row, hi * j->row);
}

/* A matrix in the chunks of rows that tp_for makes, those of a linear layer's products
 * over the same rows (runtime/ops/linalg.c): its forward, where they are C's columns,
 * and its backward, the weight gradient's rows and the input gradient's shares that
 * they give. A chunk goes to the same thread from one job to the next as far as the
 * pool keeps to its order (the caller takes the first), so a thread updates the rows it
 * read and whose gradient it made, from its own core's cache rather than the other's:
 * a VAE epoch ran 4-13 % faster in 10 paired runs than with the update cut
 * by elements, claimed by whichever thread was free; a GAN epoch within 2 %. Anything
 * else, or a matrix too small to give two threads 16 rows and 2^13 elements between
 * them, goes in chunks of elements, claimed by whichever thread is free, which keeps the
 * threads even when one is slowed: a DDPM ran 1-4 % slower with its convolutions'
 * filters cut by their output channels. */
static void opt_update_range(const opt_def *d, const opt_coef *c, opt_optimizer *o, const opt_range *r)
{
    opt_job j = {d->update, c, o->ps->data + r->offset, o->state ? o->state + r->state : NULL,
                 o->ps->grad + r->offset, o->covered, r->rows ? r->n / r->rows : 0};
    if (r->rows >= 32 && r->n >= 1 << 13)
        tp_for(r->rows, 16, opt_rows, &j);
    else
        tp_for_each(r->n, 1 << 13, opt_piece, &j);
}

/* ---- clipping ------------------------------------------------------------------------- */

/* torch.nn.utils.clip_grad_norm_: the norm of the parameters' norms, then every gradient
 * times min(max_norm / (norm + 1e-6), 1), the factor rounded to float as PyTorch's
 * tensor holds it. Sums in double: PyTorch's float reductions add in a tree whose order
 * no loop here could follow, and double lands within an ulp of either. */
static void clip_grad_norm(opt_optimizer *o)
{
    const ag_params *ps = o->ps;
    double total = 0;
    for (int gi = 0; gi < o->ngroups; gi++)
        for (int k = 0; k < o->groups[gi].nranges; k++) {
            const opt_range *r = &o->groups[gi].ranges[k];
            const float *g = ps->grad + r->offset;
            for (int64_t j = 0; j < r->n; j++) total += (double)g[j] * g[j];
        }
    float norm = (float)sqrt(total);
    float coef = (float)o->h.clip_grad_norm / (norm + 1e-6f);
    if (coef > 1.0f) coef = 1.0f;
    for (int gi = 0; gi < o->ngroups; gi++)
        for (int k = 0; k < o->groups[gi].nranges; k++) {
            const opt_range *r = &o->groups[gi].ranges[k];
            float *g = ps->grad + r->offset;
            for (int64_t j = 0; j < r->n; j++) g[j] *= coef;
        }
}

/* WGAN's clamp: p.data.clamp_(-c, c) for every parameter, after the step. */
static void clip_weights(opt_optimizer *o)
{
    float c = (float)o->h.clip_weights;
    for (int gi = 0; gi < o->ngroups; gi++)
        for (int k = 0; k < o->groups[gi].nranges; k++) {
            const opt_range *r = &o->groups[gi].ranges[k];
            float *p = o->ps->data + r->offset;
            for (int64_t j = 0; j < r->n; j++) p[j] = p[j] < -c ? -c : p[j] > c ? c : p[j];
        }
}

void opt_step(opt_optimizer *o)
{
    const opt_def *d = &opt_defs[o->kind];
    o->step++;
    if (o->h.clip_grad_norm > 0) clip_grad_norm(o);
    for (int gi = 0; gi < o->ngroups; gi++) {
        const opt_group *gr = &o->groups[gi];
        opt_coef c;
        d->coef(&c, &o->h, gr, o->step);
        for (int k = 0; k < gr->nranges; k++) opt_update_range(d, &c, o, &gr->ranges[k]);
    }
    if (o->h.clip_weights > 0) clip_weights(o);
}

void opt_set_lr(opt_optimizer *o, int group, double lr)
{
    AG_ASSERT(group >= -1 && group < o->ngroups);
    for (int gi = 0; gi < o->ngroups; gi++)
        if (group < 0 || gi == group) o->groups[gi].lr = lr;
}

/* x * 0 is 0 for a finite x and NaN for an infinity or a NaN: one sum tells, in a loop
 * the compiler can vectorize (no early exit). */
static int covered_finite(const opt_optimizer *o, const float *base)
{
    float probe = 0;
    for (int gi = 0; gi < o->ngroups; gi++)
        for (int k = 0; k < o->groups[gi].nranges; k++) {
            const opt_range *r = &o->groups[gi].ranges[k];
            const float *x = base + r->offset;
            for (int64_t j = 0; j < r->n; j++) probe += x[j] * 0.0f;
        }
    return probe == 0;
}

int opt_grads_finite(const opt_optimizer *o) { return covered_finite(o, o->ps->grad); }
int opt_params_finite(const opt_optimizer *o) { return covered_finite(o, o->ps->data); }

int64_t opt_state_floats(const opt_optimizer *o) { return o->nslices * o->covered; }
