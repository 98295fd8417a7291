/*
 * optim.h — SGD, Adam, AdamW and RMSprop with PyTorch 1.13's arithmetic (prefix opt_).
 *
 * An optimizer updates parameters of an ag_params store from the gradients in
 * ps->grad. Its parameters come in groups, each with its own learning rate and weight
 * decay (the rest of the hyper-parameters belong to the optimizer), as a PyTorch
 * optimizer's param_groups:
 *
 *     opt_hyper h = opt_defaults(OPT_ADAM);
 *     h.lr = 2e-4;
 *     if (opt_check(OPT_ADAM, &h, loc, &err)) ...          // user values, checked
 *     opt_group_spec gs[] = {{d_params, nd, h.lr, h.weight_decay}};
 *     opt_optimizer opt;
 *     if (opt_init(&opt, OPT_ADAM, &h, &ps, gs, 1, loc, &err)) ...
 *     for (...) { ag_forward(...); ag_backward(...); opt_step(&opt); }
 *     opt_free(&opt);
 *
 * Each step follows torch/optim/{sgd,adam,adamw,rmsprop}.py (_single_tensor_*) operation
 * by operation: scalar coefficients in double, as Python computes them, rounded to float
 * once, then float arithmetic per element in PyTorch's order.
 *
 * Two options of every kind wrap the step: clip_grad_norm c first scales the
 * optimizer's gradients as torch.nn.utils.clip_grad_norm_(params, c) does (their
 * total L2 norm at most c), and clip_weights c then clamps its parameters to [-c, c]
 * (WGAN's critic). 0 turns either off.
 *
 * State
 * -----
 * Scalars: the step count. Per element: SGD with momentum keeps one buffer, Adam and
 * AdamW two moments (exp_avg, exp_avg_sq), three with amsgrad (max_exp_avg_sq), RMSprop
 * square_avg, then the momentum buffer if momentum > 0, then grad_avg if centered. They
 * live in one slab of opt_state_floats() floats: slice k (k = 0 exp_avg or momentum
 * buffer, 1 exp_avg_sq, 2 max_exp_avg_sq) is floats [k * covered, (k + 1) * covered),
 * each slice holding the covered parameters' elements group by group, in the order
 * the groups listed them. Saving the slab and the step count and restoring both into
 * an optimizer made the same way resumes exactly.
 *
 * Every parameter of an optimizer is updated at each step; its gradient must be fresh
 * (ag_backward zeroes and fills the grads of the params in its plan). PyTorch skips a
 * parameter whose .grad is None; here such a parameter would decay by weight_decay.
 */
#ifndef AIGC_OPTIM_H
#define AIGC_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "aigc/arena.h"
#include "aigc/base.h"
#include "aigc/graph.h"

typedef enum opt_kind { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP, OPT_COUNT } opt_kind;

/* Doubles, like the Python floats PyTorch computes its coefficients from. */
typedef struct opt_hyper {
    double lr, weight_decay;            /* per group; these are the groups' defaults */
    double momentum, dampening;         /* sgd; momentum also rmsprop's */
    int nesterov;                       /* sgd */
    double beta1, beta2, eps;           /* adam, adamw; eps also rmsprop's */
    int amsgrad;                        /* adam, adamw */
    double alpha;                       /* rmsprop */
    int centered;                       /* rmsprop */
    double clip_grad_norm;              /* every kind; 0: off */
    double clip_weights;                /* every kind; 0: off */
} opt_hyper;

/* PyTorch's defaults (SGD has none for lr in PyTorch; ours is 1e-3). */
opt_hyper opt_defaults(opt_kind kind);
/* "sgd", "adam", "adamw", "rmsprop"; OPT_COUNT when unknown. */
opt_kind opt_kind_by_name(const char *name);
const char *opt_kind_name(opt_kind kind);

/* A learning rate past this is a mistake (a missing minus sign in 1e-3, say) that
 * would make the first update's weights non-finite: refused in specs and hooks. */
#define OPT_LR_MAX 1000.0

/* The hyper-parameters a spec may set, with their ranges (PyTorch's checks, and
 * OPT_LR_MAX); every value must be finite. */
typedef struct opt_field {
    const char *name;       /* spec key */
    size_t offset;          /* into opt_hyper: a double, or an int when is_bool */
    int is_bool;
    double lo, hi;          /* allowed: lo <= x, and x < hi (hi_open) or x <= hi */
    int hi_open;
    unsigned kinds;         /* bit (1u << kind) for each kind that has it */
} opt_field;

extern const opt_field opt_fields[];
extern const int opt_nfields;
/* NULL when kind has no field of that name. */
const opt_field *opt_field_by_name(opt_kind kind, const char *name);
/* AG_ERR with a message at loc when a value is out of its range, or nesterov lacks
 * momentum or has dampening. */
int opt_check(opt_kind kind, const opt_hyper *h, ag_loc loc, ag_error *err);
/* One value of field f, its message at loc: a spec points at the value itself. */
int opt_check_value(opt_kind kind, const opt_field *f, double x, ag_loc loc, ag_error *err);

/* One parameter's elements in the store. */
typedef struct opt_range {
    int64_t offset;         /* into ps->data and ps->grad, in floats */
    int64_t n;
    int64_t state;          /* offset in each state slice */
    int64_t rows;           /* a matrix's rows (a linear layer's outputs), else 0 */
} opt_range;

typedef struct opt_group {
    double lr, weight_decay;
    int nranges;
    opt_range *ranges;
} opt_group;

typedef struct opt_group_spec {
    const int *params;      /* indices into the store */
    int nparams;
    double lr, weight_decay;
} opt_group_spec;

typedef struct opt_optimizer {
    opt_kind kind;
    opt_hyper h;
    ag_params *ps;
    int ngroups;
    opt_group *groups;
    int64_t covered;        /* elements under this optimizer */
    int nslices;            /* per-element state slices */
    float *state;           /* nslices * covered floats, zero at the start */
    int64_t step;           /* steps taken */
    ar_arena arena;
} opt_optimizer;

/* ps must be allocated (ag_params_alloc). Each parameter of a group is a range. AG_ERR,
 * at loc, when a parameter appears twice or a group is empty. */
int opt_init(opt_optimizer *o, opt_kind kind, const opt_hyper *h, ag_params *ps,
             const opt_group_spec *groups, int ngroups, ag_loc loc, ag_error *err);
void opt_free(opt_optimizer *o);

/* One update from the gradients in ps->grad. A matrix is cut among the pool's threads
 * by its rows, as the pool cuts a linear layer's weight in its products
 * (runtime/ops/linalg.c), so that each thread updates the rows it read and whose
 * gradient it made; any cut gives the same bits. */
void opt_step(opt_optimizer *o);

/* Takes effect from the next step; group -1 means every group. */
void opt_set_lr(opt_optimizer *o, int group, double lr);

/* Whether every gradient this optimizer would apply is finite (train.on_nan: skip
 * looks before each update); and every parameter it covers (after one). */
int opt_grads_finite(const opt_optimizer *o);
int opt_params_finite(const opt_optimizer *o);

/* The state slab, for checkpoints. */
int64_t opt_state_floats(const opt_optimizer *o);

#endif
