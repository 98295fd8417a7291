/*
 * fuzz_run.h — the small run that the checkpoint harnesses load files into, and that
 * make_seeds.c saves to make their seed inputs: four parameters, Adam over two groups
 * and SGD with momentum, three generators, a data order of ten, and two fields of its
 * own (run.sum, two f64, and run.count, an i64).
 */
#ifndef AIGC_FUZZ_RUN_H
#define AIGC_FUZZ_RUN_H

#include <string.h>

#include "aigc/ckpt.h"

enum { FUZZ_ORDER = 10 };

typedef struct fuzz_run {
    ag_params ps;
    opt_optimizer opt[2];
    const char *names[2];
    rng r[3];
    rng *rp[3];
    int32_t order[FUZZ_ORDER];
    double sum[2];
    int64_t count;
    ck_field fields[2];
    ck_run ck;
} fuzz_run;

static inline void fuzz_run_make(fuzz_run *s)
{
    memset(s, 0, sizeof *s);
    ag_params_init(&s->ps);
    const ag_loc at = {0};
    int g[2], d[2];
    g[0] = ag_params_add(&s->ps, "G.0.weight", ag_shape2(4, 3), at);
    g[1] = ag_params_add(&s->ps, "G.0.bias", ag_shape1(4), at);
    d[0] = ag_params_add(&s->ps, "D.0.weight", ag_shape2(1, 5), at);
    d[1] = ag_params_add(&s->ps, "D.0.bias", ag_shape1(1), at);
    ag_params_alloc(&s->ps);
    opt_hyper hg = opt_defaults(OPT_ADAM), hd = opt_defaults(OPT_SGD);
    hd.momentum = 0.9;
    opt_group_spec gg[2] = {{g, 1, 1e-3, 0}, {g + 1, 1, 2e-3, 0}}, gd = {d, 2, 0.1, 0};
    ag_error err;
    AG_ASSERT(opt_init(&s->opt[0], OPT_ADAM, &hg, &s->ps, gg, 2, at, &err) == AG_OK);
    AG_ASSERT(opt_init(&s->opt[1], OPT_SGD, &hd, &s->ps, &gd, 1, at, &err) == AG_OK);
    s->names[0] = "opt_G";
    s->names[1] = "opt_D";
    for (int k = 0; k < 3; k++) {
        rng_seed(&s->r[k], (uint64_t)k + 1);
        s->rp[k] = &s->r[k];
    }
    for (int k = 0; k < FUZZ_ORDER; k++) s->order[k] = FUZZ_ORDER - 1 - k;
    s->fields[0] = (ck_field){"sum", CK_F64, 2, s->sum, 0};
    s->fields[1] = (ck_field){"count", CK_I64, 1, &s->count, 0};
    s->ck = (ck_run){.spec_name = "fuzz",
                     .spec_hash = "hash-1",
                     .params = &s->ps,
                     .noptims = 2,
                     .optims = s->opt,
                     .optim_names = s->names,
                     .nrngs = 3,
                     .rngs = s->rp,
                     .order = s->order,
                     .norder = FUZZ_ORDER,
                     .fields = s->fields,
                     .nfields = 2};
}

static inline void fuzz_run_free(fuzz_run *s)
{
    opt_free(&s->opt[0]);
    opt_free(&s->opt[1]);
    ag_params_free(&s->ps);
}

#endif
