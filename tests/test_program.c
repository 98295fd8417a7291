/*
 * test_program.c — the spec compiler: a spec's models, step and checks turned into
 * graphs by pg_build.
 *
 * Each case writes a small spec to a temporary .yaml file, loads it with sp_load and
 * builds it for 28x28 images of 10 classes (data/mnist's shape; no data is read).
 * Error cases assert the whole message, FILE:LINE:COL first: the place is part of the
 * contract, since it is how a user finds the mistake.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aigc/metrics.h"
#include "aigc/program.h"
#include "aigc/spec.h"
#include "tap.h"

/* The data section every case shares: lines 1 to 6 of each spec. */
#define HEAD(x)                                                                        \
    "name: t\n"                                                                        \
    "seed: 1\n"                                                                        \
    "data:\n"                                                                          \
    "  dataset: mnist\n"                                                               \
    "  path: data/mnist\n"                                                             \
    "  x: " x "\n"

typedef struct tcase {
    char path[64];
    sp_spec s;
    pg_program p;
    int loaded, built;
    ag_error err;
} tcase;

/* Writes text to a fresh temporary spec file, loads it and builds it. AG_OK when both
 * succeed; otherwise the message is in t->err. */
static int build(tcase *t, const char *text)
{
    memset(t, 0, sizeof *t);
    snprintf(t->path, sizeof t->path, "/tmp/aigc-test-XXXXXX.yaml");
    int fd = mkstemps(t->path, 5);
    if (fd < 0) {
        snprintf(t->err.msg, sizeof t->err.msg, "cannot make a temporary file");
        return AG_ERR;
    }
    size_t len = strlen(text);
    int wrote = write(fd, text, len) == (ssize_t)len;
    close(fd);
    if (!wrote) {
        snprintf(t->err.msg, sizeof t->err.msg, "cannot write %s", t->path);
        return AG_ERR;
    }
    /* A failed load leaves its arena to sp_free too. */
    int loaded = sp_load(&t->s, t->path, NULL, 0, &t->err);
    t->loaded = 1;
    if (loaded) return AG_ERR;
    int rc = pg_build(&t->p, &t->s, 28, 28, 10, &t->err);
    t->built = 1;  /* pg_free cleans up after a failed build too */
    return rc;
}

static void release(tcase *t)
{
    if (t->built) pg_free(&t->p);
    if (t->loaded) sp_free(&t->s);
    unlink(t->path);
}

/* build, as a test line: on failure the error goes to the TAP output and t is released,
 * so that the caller only returns. */
__attribute__((format(printf, 3, 4))) static int build_ok(tcase *t, const char *text, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (ok(build(t, text) == AG_OK, "%s", name)) return 1;
    diag("%s", t->err.msg);
    release(t);
    return 0;
}

/* The message must be exactly "PATH:LINE:COL: want". */
static void expect_error(const char *name, const char *text, int line, int col, const char *want)
{
    tcase t;
    int rc = build(&t, text);
    char full[1200];
    snprintf(full, sizeof full, "%s:%d:%d: %s", t.path, line, col, want);
    ok(rc == AG_ERR, "%s: the build fails", name);
    is_str(t.err.msg, full, "%s: message", name);
    release(&t);
}

static int model_index(const pg_program *p, const char *name)
{
    for (int k = 0; k < p->nmodels; k++)
        if (strcmp(p->spec->models[k].name, name) == 0) return k;
    return -1;
}

/* ---- parameter counts and FLOPs ------------------------------------------------- */

static void test_counts(void)
{
    sp_spec s;
    pg_program p;
    ag_error err;
    if (ok(sp_load(&s, "specs/gan.yaml", NULL, 0, &err) == AG_OK && pg_build(&p, &s, 28, 28, 10, &err) == AG_OK,
           "specs/gan.yaml builds")) {
        ok(p.models[model_index(&p, "G")].params == 559632, "G has 559,632 parameters (%lld)",
           (long long)p.models[model_index(&p, "G")].params);
        ok(p.models[model_index(&p, "D")].params == 533505, "D has 533,505 parameters (%lld)",
           (long long)p.models[model_index(&p, "D")].params);
        ok(p.params.total == 559632 + 533505, "the parameter slab holds both models exactly");
        ok(p.params.n == 12 && strcmp(p.params.p[0].name, "G.0.weight") == 0 &&
               strcmp(p.params.p[11].name, "D.4.bias") == 0,
           "parameters named like torch.nn.Sequential, G's first");
        /* Two updates: D's, then G's. */
        ok(p.nsegs == 2, "the GAN step has 2 segments (%d)", p.nsegs);
        ok(p.nsegs == 2 && p.segs[0].optim == 0 && p.segs[1].optim == 1, "opt_D's segment, then opt_G's");
        ok(p.nsegs == 2 && p.segs[0].to == p.segs[1].from && p.segs[1].to == p.step.n,
           "the segments cover the step in order");
        ok(p.nlogs == 2 && strcmp(p.log_names[0], "loss_D") == 0 && strcmp(p.log_names[1], "loss_G") == 0,
           "logs loss_D and loss_G");
        for (int k = 0; k < 5 * 28 * 28; k++) p.pixels->data[k] = (float)(k % 256);
        ok(pg_train_step(&p, 5) == AG_OK && isfinite(p.logs[0]->data[0]) && isfinite(p.logs[1]->data[0]),
           "a GAN step at batch 5 gives finite losses (%g, %g)", p.logs[0]->data[0], p.logs[1]->data[0]);
        pg_free(&p);
    } else {
        diag("%s", err.msg);
    }
    sp_free(&s);

    if (ok(sp_load(&s, "specs/vae.yaml", NULL, 0, &err) == AG_OK && pg_build(&p, &s, 28, 28, 10, &err) == AG_OK,
           "specs/vae.yaml builds")) {
        int64_t enc = p.models[model_index(&p, "encoder")].params;
        int64_t dec = p.models[model_index(&p, "decoder")].params;
        ok(enc == 330040 && dec == 322784, "encoder 330,040 and decoder 322,784 parameters (%lld, %lld)",
           (long long)enc, (long long)dec);
        ok(enc + dec == 652824, "the VAE has 652,824 parameters");
        ok(p.nsegs == 2 && p.segs[0].optim == 0 && p.segs[1].optim == -1,
           "the VAE step: an update, then a plain tail for loss_per_image");
        pg_free(&p);
    } else {
        diag("%s", err.msg);
    }
    sp_free(&s);

    tcase t;
    int rc = build(&t, HEAD("flatten(pixels / 255)")
                   "models:\n"
                   "  lin: {in: 784, layers: [linear 10]}\n"
                   "train:\n"
                   "  epochs: 1\n"
                   "  optimizers:\n"
                   "    opt: {type: sgd, lr: 0.1, params: lin}\n"
                   "  step:\n"
                   "    - loss = cross_entropy(lin(x), label)\n"
                   "    - update opt: loss\n");
    if (ok(rc == AG_OK, "a single linear model builds") || (diag("%s", t.err.msg), 0)) {
        ok(t.p.models[0].flops == 2 * 784 * 10 + 10, "linear 784 -> 10: 2*784*10 + 10 FLOPs per sample (%lld)",
           (long long)t.p.models[0].flops);
        ok(t.p.models[0].params == 7850, "and 7,850 parameters");
        ok(t.p.nsegs == 1 && t.p.segs[0].optim == 0, "one segment, ending in the update");
    }
    release(&t);

    /* Attention's two products, q k^T and p v, 2 T^2 C FLOPs each per sample: here T = 16
     * positions of C = 16 (qkv [16, 48]). A layer, so a stack may hold it too. */
    int64_t flops[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        char text[1024];
        snprintf(text, sizeof text,
                 HEAD("flatten(pixels / 255)") "models:\n"
                 "  att: {in: 784, layers: [linear 768, reshape 16 48%s]}\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: att}\n"
                 "  step:\n"
                 "    - loss = mean(att(x))\n"
                 "    - update opt: loss\n",
                 k ? ", causal_attention 4" : "");
        rc = build(&t, text);
        if (!ok(rc == AG_OK, "a stack %s attention builds", k ? "with" : "without"))
            diag("%s", t.err.msg);
        else
            flops[k] = t.p.models[0].flops;
        release(&t);
    }
    ok(flops[1] - flops[0] == 4 * 16 * 16 * 16, "causal_attention 4 on [16, 48]: 4 T^2 C = 16,384 "
       "FLOPs per sample (%lld)", (long long)(flops[1] - flops[0]));
}

/* ---- a graph-form model --------------------------------------------------------- */

static const char graph_spec[] = HEAD("flatten(pixels / 255)")
    "models:\n"
    "  net:\n"
    "    in: {a: 784, b: 10}\n"
    "    nodes:\n"
    "      h: 'relu(linear(concat(a, b), 64))'\n"
    "      score: 'linear(h, 1)'\n"
    "      logits: 'linear(h, 10, bias=0)'\n"
    "    outputs: [score, logits]\n"
    "train:\n"
    "  epochs: 1\n"
    "  optimizers:\n"
    "    opt: {type: adam, lr: 1e-3, params: net}\n"
    "  step:\n"
    "    - score, logits = net(x, one_hot(label, 10))\n"
    "    - loss = mean(score * score) + cross_entropy(logits, label)\n"
    "    - update opt: loss\n";

static void test_graph_model(void)
{
    tcase t;
    if (!build_ok(&t, graph_spec, "a graph-form model with two inputs and two outputs builds")) return;
    const ag_params *ps = &t.p.params;
    const char *want[] = {"net.h.weight", "net.h.bias", "net.score.weight", "net.score.bias", "net.logits.weight"};
    int good = ps->n == (int)AG_COUNTOF(want);
    for (size_t k = 0; good && k < AG_COUNTOF(want); k++) good = strcmp(ps->p[k].name, want[k]) == 0;
    ok(good, "parameters are named <model>.<node>.weight/bias, in node order");
    int h = ag_params_find(ps, "net.h.weight");
    ok(h >= 0 && ps->p[h].shape.d[0] == 64 && ps->p[h].shape.d[1] == 794, "net.h.weight is [64, 794]");
    ok(t.p.models[0].params == 794 * 64 + 64 + 64 + 1 + 64 * 10, "net's parameter count");

    enum { B = 5 };
    for (int k = 0; k < B * 28 * 28; k++) t.p.pixels->data[k] = (float)(k % 2);
    for (int k = 0; k < B; k++) t.p.labels->data[k] = (float)(k % 10);
    ok(pg_train_step(&t.p, B) == AG_OK, "a training step at batch 5 runs");
    float loss = t.p.logs[0]->data[0];
    ok(t.p.nlogs == 1 && isfinite(loss) && loss > 0, "the logged loss is finite (%g)", loss);
    ok(pg_train_step(&t.p, B) == AG_OK && isfinite(t.p.logs[0]->data[0]), "and again");
    ok(pg_eval_step(&t.p, 3) == AG_OK && isfinite(t.p.logs[0]->data[0]), "an eval step at batch 3 runs");
    release(&t);
}

/* ---- updates made every K steps -------------------------------------------------- */

static const char every_spec[] = HEAD("flatten(pixels / 255)")
    "models:\n"
    "  G: {in: 8, layers: [linear 784, tanh]}\n"
    "  D: {in: 784, layers: [linear 4, relu, linear 1]}\n"
    "train:\n"
    "  epochs: 1\n"
    "  optimizers:\n"
    "    opt_D: {type: rmsprop, lr: 1e-2, clip_weights: 0.05, params: D}\n"
    "    opt_G: {type: rmsprop, lr: 1e-2, params: G}\n"
    "  step:\n"
    "    - fake = G(randn(batch, 8))\n"
    "    - loss_D = wasserstein(D(x), 1) + wasserstein(D(detach(fake)), -1)\n"
    "    - update opt_D: loss_D\n"
    "    - g_score = D(fake)\n"
    "    - loss_G = wasserstein(g_score, 1)\n"
    "    - update opt_G every 3: loss_G\n"
    "  log: [loss_D, loss_G]\n";

/* Whether a parameter's values differ from a copy of them. */
static int moved(const ag_params *ps, const char *name, const float *before)
{
    const ag_parameter *w = &ps->p[ag_params_find(ps, name)];
    return memcmp(w->data, before, (size_t)ag_numel(&w->shape) * sizeof *before) != 0;
}

/* Whether a training step after `done` steps changed D's and G's weights; loss_G's
 * buffer changed tells whether it ran. */
static void every_step(tcase *t, int64_t done, int *d_moved, int *g_moved, int *g_ran)
{
    const ag_params *ps = &t->p.params;
    static float g0[8 * 784], d0[784 * 4];
    memcpy(g0, ps->p[ag_params_find(ps, "G.0.weight")].data, sizeof g0);
    memcpy(d0, ps->p[ag_params_find(ps, "D.0.weight")].data, sizeof d0);
    float l0 = t->p.logs[1]->data[0];
    t->p.logs[1]->data[0] = NAN;
    t->p.steps_done = done;
    *g_ran = pg_train_step(&t->p, 4) == AG_OK && !isnan(t->p.logs[1]->data[0]);
    if (!*g_ran) t->p.logs[1]->data[0] = l0;
    *g_moved = moved(ps, "G.0.weight", g0);
    *d_moved = moved(ps, "D.0.weight", d0);
}

static void test_every(void)
{
    tcase t;
    if (!build_ok(&t, every_spec, "a spec with 'update opt_G every 3' builds")) return;
    const pg_program *p = &t.p;
    ok(p->segs[1].every == 3 && p->segs[0].every == 1, "the update's period is 3, the other's 1");
    ok(p->log_every[0] == 1 && p->log_every[1] == 3, "loss_D is computed every step, loss_G every 3rd");
    /* g_score = D(fake): D's two linear layers and relu, then the loss; fake itself is
     * loss_D's too. */
    int sometimes = 0, fake_every = 0;
    for (int k = 0; k < p->step.n; k++) sometimes += p->node_every[k] == 3;
    for (int k = 0; k < p->nnamed; k++)
        if (!strcmp(p->named[k], "fake")) fake_every = p->node_every[p->named_nodes[k]->id];
    ok(sometimes >= 4 && fake_every == 1, "D(fake) and loss_G run every 3rd step, fake every step (%d nodes)",
       sometimes);

    for (int k = 0; k < 4 * 28 * 28; k++) t.p.pixels->data[k] = (float)(k % 255);
    int d, g, ran;
    every_step(&t, 0, &d, &g, &ran);
    ok(d && g && ran, "after 0 steps: both updates, loss_G computed");
    every_step(&t, 1, &d, &g, &ran);
    ok(d && !g && !ran, "after 1 step: D updated, G not, loss_G not computed");
    every_step(&t, 2, &d, &g, &ran);
    ok(d && !g && !ran, "after 2 steps: the same");
    every_step(&t, 3, &d, &g, &ran);
    ok(d && g && ran, "after 3 steps: both again");
    float w = 0;
    int dw = ag_params_find(&p->params, "D.0.weight");
    for (int64_t k = 0; k < ag_numel(&p->params.p[dw].shape); k++) w = fmaxf(w, fabsf(p->params.p[dw].data[k]));
    ok(w <= 0.05f, "clip_weights holds D's weights in [-0.05, 0.05] (largest %g)", w);

    /* The epoch means count each value over the batches that computed it. */
    mt_means m = {0};
    t.p.steps_done = 4;
    mt_add(&m, p, (const float[]){1, 5}, 4, 1);
    t.p.steps_done = 6;
    mt_add(&m, p, (const float[]){3, 7}, 4, 1);
    ok(mt_mean(&m, 0) == 2 && mt_mean(&m, 1) == 7 && m.counts[1] == 4 && m.count == 8,
       "loss_G's mean is over the one batch of two that computed it");
    release(&t);
}

/* ---- the batch cut into parts -------------------------------------------------------- */

/* Batch 6, two parts: the first trains M, the second only feeds a logged value. */
static const char part_spec[] =
    "name: t\n"
    "seed: 1\n"
    "data: {dataset: mnist, path: data/mnist, batch: 6, drop_last: true, x: flatten(pixels / 255)}\n"
    "models:\n"
    "  M: {in: 784, layers: [linear 1]}\n"
    "train:\n"
    "  epochs: 1\n"
    "  optimizers: {opt: {type: sgd, lr: 0.1, params: M}}\n"
    "  step:\n"
    "    - a, b = split(x, 2, axis=0)\n"
    "    - h1, h2, h3 = chunk(M(x), 3, axis=0)\n"
    "    - loss = mean(h2 * h2)\n"
    "    - update opt: loss\n"
    "    - seen = sum(b)\n"
    "  log: [loss, seen]\n";

static void test_batch_parts(void)
{
    tcase t;
    if (!build_ok(&t, part_spec, "split and chunk of the batch axis build with drop_last")) return;
    enum { B = 6 };
    for (int k = 0; k < B * 784; k++) t.p.pixels->data[k] = (float)(k / 784); /* row r is r / 255 */
    const ag_params *ps = &t.p.params;
    int w = ag_params_find(ps, "M.0.weight"), bias = ag_params_find(ps, "M.0.bias");
    double b0 = ps->p[bias].data[0], wsum = 0;
    for (int j = 0; j < 784; j++) wsum += ps->p[w].data[j];
    ok(pg_train_step(&t.p, B) == AG_OK, "a step runs");
    double seen = 784 * (3 + 4 + 5) / 255.0;
    ok(fabs(t.p.logs[1]->data[0] - seen) < 1e-3, "b holds rows 3 to 5: sum %g (want %g)", t.p.logs[1]->data[0],
       seen);
    /* loss = (h_2^2 + h_3^2) / 2 with h_r = (r / 255) sum(w) + b: the bias moves by
     * -lr (h_2 + h_3), from rows 2 and 3 alone. */
    double h2 = 2 / 255.0 * wsum + b0, h3 = 3 / 255.0 * wsum + b0, moved = ps->p[bias].data[0] - b0;
    ok(fabs(moved + 0.1 * (h2 + h3)) < 1e-5, "the gradient flows through h2's rows only: the bias moved %g (want %g)",
       moved, -0.1 * (h2 + h3));
    release(&t);
}

/* ---- spectral normalization ------------------------------------------------------- */

static const char sn_spec[] = HEAD("pixels / 255")
    "models:\n"
    "  D:\n"
    "    in: [28, 28]\n"
    "    layers: [reshape 1 28 28, conv2d 2 4 2 sn=1, flatten, linear 1 bias=0 sn=1]\n"
    "train:\n"
    "  epochs: 1\n"
    "  optimizers: {opt: {type: adam, lr: 1e-2, params: D}}\n"
    "  step:\n"
    "    - loss = hinge(D(x), 1)\n"
    "    - update opt: loss\n";

static void test_spectral_layers(void)
{
    tcase t;
    if (!build_ok(&t, sn_spec, "conv2d and linear with sn=1 build")) return;
    const ag_params *ps = &t.p.params;
    const char *want[] = {"D.1.weight_orig", "D.1.bias", "D.1.weight_u", "D.1.weight_v",
                          "D.3.weight_orig", "D.3.weight_u", "D.3.weight_v"};
    int good = ps->n == (int)AG_COUNTOF(want);
    for (size_t k = 0; good && k < AG_COUNTOF(want); k++) good = strcmp(ps->p[k].name, want[k]) == 0;
    ok(good, "PyTorch's names: weight_orig, then the buffers weight_u and weight_v after the bias");
    int u = ag_params_find(ps, "D.1.weight_u"), v = ag_params_find(ps, "D.1.weight_v");
    ok(ps->p[u].shape.d[0] == 2 && ps->p[v].shape.d[0] == 16, "u is [out] = [2], v [in * k * k] = [16]");
    double uu = 0;
    for (int k = 0; k < 2; k++) uu += (double)ps->p[u].data[k] * ps->p[u].data[k];
    ok(fabs(uu - 1) < 1e-6, "u starts as a unit vector (|u|^2 = %g)", uu);
    ok(t.p.optims[0].covered == 2 * 16 + 2 + 169 * 2, "the optimizer covers the weights, not the buffers");
    ok(t.p.models[0].params == 2 * 16 + 2 + 338, "and the parameter count leaves them out too");

    for (int k = 0; k < 4 * 28 * 28; k++) t.p.pixels->data[k] = (float)(k % 255);
    float u0 = ps->p[u].data[0];
    ok(pg_eval_step(&t.p, 4) == AG_OK && ps->p[u].data[0] == u0, "an evaluation step leaves u as it is");
    ok(pg_train_step(&t.p, 4) == AG_OK && ps->p[u].data[0] != u0, "a training step moves it");
    release(&t);
}

/* ---- errors --------------------------------------------------------------------- */

/* Two models, two optimizers: the scaffold most error cases edit one line of. */
#define GAN_MODELS                                                                     \
    "models:\n"                                                                        \
    "  G: {in: 100, layers: [linear 784, tanh]}\n"                                     \
    "  D: {in: 784, layers: [linear 1, sigmoid]}\n"

#define GAN_OPTIMS                                                                     \
    "train:\n"                                                                         \
    "  epochs: 1\n"                                                                    \
    "  optimizers:\n"                                                                  \
    "    opt_D: {type: adam, lr: 2e-4, params: D}\n"                                   \
    "    opt_G: {type: adam, lr: 2e-4, params: G}\n"                                   \
    "  step:\n"

static void test_errors(void)
{
    /* Line 16 is the first step statement of the GAN scaffold; its text starts at
     * column 7. Every place below points at the offending text itself. */
    expect_error("shape mismatch at a model call",
                 HEAD("flatten(pixels / 255)") GAN_MODELS GAN_OPTIMS
                 "    - fake = G(randn(batch, 50))\n"
                 "    - update opt_D: bce(D(x), 1) + bce(D(detach(fake)), 0)\n"
                 "    - update opt_G: bce(D(fake), 1)\n",
                 16, 16, "model 'G' expects input [B, 100], got [B, 50]");
    expect_error("undefined name",
                 HEAD("flatten(pixels / 255)") GAN_MODELS GAN_OPTIMS
                 "    - fake = G(randn(batch, 100))\n"
                 "    - update opt_D: bce(D(x), 1) + bce(D(detach(fak)), 0)\n"
                 "    - update opt_G: bce(D(fake), 1)\n",
                 17, 49, "undefined name 'fak'; did you mean 'fake'?");
    expect_error("unknown function",
                 HEAD("flatten(pixels / 255)") GAN_MODELS GAN_OPTIMS
                 "    - fake = G(randn(batch, 100))\n"
                 "    - update opt_D: bce(D(x), 1) + bce(D(detatch(fake)), 0)\n"
                 "    - update opt_G: bce(D(fake), 1)\n",
                 17, 42, "unknown function or model 'detatch'; did you mean 'detach'?");
    expect_error("a model no update trains",
                 HEAD("flatten(pixels / 255)") GAN_MODELS
                 "  E: {in: 784, layers: [linear 3]}\n"
                 GAN_OPTIMS
                 "    - fake = G(randn(batch, 100))\n"
                 "    - update opt_D: bce(D(x), 1) + bce(D(detach(fake)), 0) + mean(E(x))\n"
                 "    - update opt_G: bce(D(fake), 1)\n",
                 10, 3, "model 'E' has 2355 parameters but no optimizer updates them; add it to an optimizer's 'params'");
    expect_error("an optimizer never used",
                 HEAD("flatten(pixels / 255)") GAN_MODELS GAN_OPTIMS
                 "    - fake = G(randn(batch, 100))\n"
                 "    - update opt_D: bce(D(x), 1) + bce(D(fake), 0)\n",
                 14, 5, "optimizer 'opt_G' is never used: add 'update opt_G: LOSS' to the step");
    expect_error("a bce target outside [0, 1]",
                 HEAD("flatten(pixels / 255 * 2 - 1)")
                 "models:\n"
                 "  AE: {in: 784, layers: [linear 784, sigmoid]}\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: adam, lr: 1e-3, params: AE}\n"
                 "  step:\n"
                 "    - update opt: bce(AE(x), x)\n",
                 14, 30,
                 "bce: the target takes values in [-1, 1], but bce targets must lie in [0, 1] "
                 "(scale the data with pixels / 255, not to [-1, 1])");
    expect_error("split into unequal parts",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  M: {in: 261, layers: [linear 1]}\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: M}\n"
                 "  step:\n"
                 "    - a, b, c = split(x, 3)\n"
                 "    - update opt: mean(M(a))\n",
                 14, 17, "split: 784 elements along axis -1 do not split into 3 equal parts");
    expect_error("tuple count mismatch",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  M: {in: 392, layers: [linear 1]}\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: M}\n"
                 "  step:\n"
                 "    - a, b, c = split(x, 2)\n"
                 "    - update opt: mean(M(a))\n",
                 14, 7, "3 names on the left, but the right side gives 2 values");
    expect_error("a graph model's output names a missing node",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  net:\n"
                 "    in: 784\n"
                 "    nodes:\n"
                 "      h: 'linear(x, 16)'\n"
                 "      out: 'linear(h, 1)'\n"
                 "    outputs: [out, hh]\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: net}\n"
                 "  step:\n"
                 "    - a, b = net(x)\n"
                 "    - update opt: mean(a)\n",
                 13, 20, "model 'net' has no node 'hh'; did you mean 'h'?");
    expect_error("unknown layer in a stack",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  M: {in: 784, layers: [linear 10, rellu, linear 1]}\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: M}\n"
                 "  step:\n"
                 "    - update opt: mean(M(x))\n",
                 8, 36, "unknown layer 'rellu'; did you mean 'relu'?");
    expect_error("a layer with parameters in the step",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  M: {in: 784, layers: [linear 1]}\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: M}\n"
                 "  step:\n"
                 "    - update opt: mean(M(linear(x, 784)))\n",
                 14, 26, "'linear' has parameters: use it inside a model, not in the step");
    expect_error("a model called with too many inputs",
                 HEAD("flatten(pixels / 255)") GAN_MODELS GAN_OPTIMS
                 "    - fake = G(randn(batch, 100), x)\n"
                 "    - update opt_D: bce(D(x), 1) + bce(D(detach(fake)), 0)\n"
                 "    - update opt_G: bce(D(fake), 1)\n",
                 16, 14, "model 'G' takes 1 input, got 2");
    /* `batch` alone is a number, not a loss: refused with a message. */
    expect_error("the batch size as a loss",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  M: {in: 784, layers: [linear 1]}\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: M}\n"
                 "  step:\n"
                 "    - l = mean(M(x))\n"
                 "    - update opt: batch\n",
                 15, 19, "update opt: the loss is a constant; it must be computed from the models");
    /* More outputs than a call can hold: refused, not written past the evaluator's buffer. */
    expect_error("a graph model with 17 outputs",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  net:\n"
                 "    in: 784\n"
                 "    nodes: {h: 'linear(x, 2)'}\n"
                 "    outputs: [h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h]\n"
                 "train:\n"
                 "  epochs: 1\n"
                 "  optimizers:\n"
                 "    opt: {type: sgd, lr: 0.1, params: net}\n"
                 "  step:\n"
                 "    - update opt: mean(net(x))\n",
                 11, 63, "model 'net' has 17 outputs, more than the 16 a model can give");
    /* d = D(fake) before opt_D's update, differentiated after it: PyTorch refuses the
     * same at run time; we refuse it at the statement that made the stale value. */
    expect_error("a value computed before an update that changed its weights",
                 HEAD("flatten(pixels / 255 * 2 - 1)") GAN_MODELS GAN_OPTIMS
                 "    - fake = G(randn(batch, 100))\n"
                 "    - d = D(fake)\n"
                 "    - update opt_D: bce(D(x), 1) + bce(D(detach(fake)), 0)\n"
                 "    - update opt_G: bce(d, 1)\n",
                 17, 7, "update opt_G would differentiate a value computed here, before 'update opt_D' changed "
                 "D.0.weight; compute it again after that update");
}

/* ---- training reduces the loss -------------------------------------------------- */

/* A classifier of `hidden` units at batch `batch`. */
static int build_classifier(tcase *t, int hidden, int batch)
{
    char text[1024];
    snprintf(text, sizeof text,
             HEAD("flatten(pixels / 255)")
             "  batch: %d\n"
             "models:\n"
             "  clf: {in: 784, layers: [linear %d, relu, linear 10]}\n"
             "train:\n"
             "  epochs: 1\n"
             "  optimizers:\n"
             "    opt: {type: adam, lr: 1e-3, params: clf}\n"
             "  step:\n"
             "    - loss = cross_entropy(clf(x), label)\n"
             "    - update opt: loss\n",
             batch, hidden);
    return build(t, text);
}

static void test_training(void)
{
    tcase t;
    int rc = build_classifier(&t, 32, 16);
    if (!ok(rc == AG_OK, "a classifier spec builds")) {
        diag("%s", t.err.msg);
        release(&t);
        return;
    }
    enum { B = 16 };
    rng r;
    rng_seed(&r, 42);
    for (int k = 0; k < B * 28 * 28; k++) t.p.pixels->data[k] = floorf(256 * rng_uniform(&r));
    for (int k = 0; k < B; k++) t.p.labels->data[k] = (float)rng_below(&r, 10);
    float first = 0, last = 0;
    int good = 1;
    for (int step = 0; step < 50 && good; step++) {
        good = pg_train_step(&t.p, B) == AG_OK;
        if (step == 0) first = t.p.logs[0]->data[0];
        last = t.p.logs[0]->data[0];
    }
    ok(good, "50 training steps run");
    ok(isfinite(first) && isfinite(last) && last < 0.5f * first,
       "the loss falls by more than half on a fixed batch (%.4f -> %.4f)", first, last);
    release(&t);
}

/* The evaluation's graphs: the step's own, then copies made once and kept; none past a
 * quarter of the run's memory or what --max-memory leaves. */
static void test_eval_graphs(void)
{
    tcase t;
    if (!ok(build_classifier(&t, 256, 16) == AG_OK, "a classifier of 256 units at batch 16 builds")) {
        release(&t);
        return;
    }
    ag_graph *g[3], *again[3];
    int n = pg_eval_graphs(&t.p, 3, g);
    ok(n == 3 && g[0] == &t.p.step && g[1] != g[2] && g[1]->n == t.p.step.n &&
           g[1]->nodes[t.p.logs[0]->id]->data != t.p.logs[0]->data,
       "pg_eval_graphs(3): the step's graph and two copies with memory of their own");
    int n2 = pg_eval_graphs(&t.p, 2, again);
    ok(n2 == 2 && again[1] == g[1] && pg_eval_graphs(&t.p, 3, again) == 3 && again[2] == g[2] &&
           t.p.copies.n == 2,
       "... kept: asked again, the same copies");

    /* pg_build's count: values, gradients and three moments per parameter. */
    int64_t params = t.p.params.total * 5 * (int64_t)sizeof(float),
            slab = t.p.step.slab_floats * (int64_t)sizeof(float),
            copy = g[1]->slab_floats * (int64_t)sizeof(float);
    ok(copy < slab, "a copy plans less memory than the step's graph, which has gradients (%lld < %lld bytes)",
       (long long)copy, (long long)slab);
    for (int room = 0; room <= 1; room++) {
        pg_free(&t.p);
        t.s.max_memory = params + slab + room * copy + 1024;
        int rc = pg_build(&t.p, &t.s, 28, 28, 10, &t.err);
        n = rc == AG_OK ? pg_eval_graphs(&t.p, 3, g) : 0;
        ok(n == 1 + room && pg_eval_graphs(&t.p, 3, g) == 1 + room,
           "--max-memory with room for %d cop%s: %d graph%s for 3 threads", room, room ? "y" : "ies", n,
           n == 1 ? "" : "s");
    }
    release(&t);

    /* 8 units at batch 1024: the batch's activations outweigh the parameters. */
    if (ok(build_classifier(&t, 8, 1024) == AG_OK, "a classifier of 8 units at batch 1024 builds"))
        ok(pg_eval_graphs(&t.p, 2, g) == 1, "a copy of its step (%.1f MB) is more than a quarter of the "
           "run's memory: 1 graph for 2 threads", (double)t.p.step.slab_floats * 4 / 1e6);
    release(&t);
}

/* A one-layer model M trained by SGD on mean(M(x)): lines 1 to 14 of a spec whose
 * sample section follows. */
#define ONE_LAYER                                                                      \
    HEAD("flatten(pixels / 255)")                                                      \
    "models:\n"                                                                        \
    "  M: {in: 784, layers: [linear 1]}\n"                                             \
    "train:\n"                                                                         \
    "  epochs: 1\n"                                                                    \
    "  optimizers: {opt: {type: sgd, lr: 0.1, params: M}}\n"                           \
    "  step:\n"                                                                        \
    "    - update opt: mean(M(x))\n"

/* A one-layer model M, a 10-step schedule, and a sample section `walk` whose loop
 * starts x at 0 and adds alpha_bar[t - 1] for t = 9..0: the step's statements and the
 * section's other keys are the two arguments. */
#define WALK_SPEC(step, keys)                                                          \
    HEAD("flatten(pixels / 255)")                                                      \
    "schedule: {kind: linear, steps: 10, beta_start: 0.01, beta_end: 0.1}\n"           \
    "models:\n"                                                                        \
    "  M: {in: 784, layers: [linear 1]}\n"                                             \
    "train:\n"                                                                         \
    "  epochs: 1\n"                                                                    \
    "  optimizers: {opt: {type: sgd, lr: 0.1, params: M}}\n"                           \
    "  step:\n" step                                                                   \
    "sample:\n"                                                                        \
    "  walk:\n" keys                                                                   \
    "    steps:\n"                                                                     \
    "      - x = zeros(n, 784)\n"                                                      \
    "    loop:\n"                                                                      \
    "      var: t\n"                                                                   \
    "      from: 9\n"                                                                  \
    "      to: 0\n"                                                                    \
    "      steps:\n"                                                                   \
    "        - x = x + at(alpha_bar, t - 1, like=x)\n"                                 \
    "    image: x\n"

/* A sample section's loop carries x from pass to pass; the schedule's tables are
 * constants. x starts at 0 and each pass for t = 9..0 adds alpha_bar[t - 1] (1 where
 * t - 1 leaves the table), so x ends at 1 + sum of alpha_bar[0..8]. */
static void test_sampling_loop(void)
{
    tcase t;
    int rc = build(&t, WALK_SPEC("    - s = randint(T, batch)\n"
                                 "    - loss = mse(M(x), at(alpha_bar, s, like=M(x)))\n"
                                 "    - update opt: loss\n",
                                 "    count: 3\n"));
    if (!ok(rc == AG_OK, "a spec with a schedule and a sampling loop builds")) {
        diag("%s", t.err.msg);
        release(&t);
        return;
    }
    double bar = 1, want = 1;
    for (int k = 0; k < 10; k++) {
        bar *= 1 - (0.01 + (0.1 - 0.01) * k / 9);
        if (k < 9) want += bar;
    }
    ag_error err;
    ok(pg_sample(&t.p, 0, 1, &err) == AG_OK, "the loop runs");
    const pg_sampler *q = &t.p.samples[0];
    int same = 1;
    for (int k = 0; k < 3 * 784; k++) same &= fabs(q->image->data[k] - want) < 1e-5;
    ok(same, "x after 10 passes is 1 + sum(alpha_bar[0..8]) = %.6f (got %.6f)", want, q->image->data[0]);
    ok(pg_sample(&t.p, 0, 1, &err) == AG_OK && fabs(q->image->data[0] - want) < 1e-5,
       "a second sampling starts again from the loop's initial value");
    ok(fabs(t.p.sched[2][9] - bar) < 1e-6, "alpha_bar[T-1] is the product of 1 - beta");
    release(&t);

    expect_error("a loop that changes a carried value's shape",
                 ONE_LAYER
                 "sample:\n"
                 "  steps:\n"
                 "    - x = zeros(n, 784)\n"
                 "  loop:\n"
                 "    var: t\n"
                 "    from: 0\n"
                 "    to: 3\n"
                 "    steps:\n"
                 "      - x = M(x)\n"
                 "  image: x\n",
                 18, 5, "loop: 'x' is [64, 784] before the loop but [64, 1] after a pass");
}

/* ---- exponential moving averages --------------------------------------------- */

/* M has `ema:`, N has none. After each SGD step the average follows
 * ema = d ema + (1 - d) w from the initial weights, computed here by hand; with warmup
 * d = min(decay, (1 + k) / (10 + k)) at step k. Sampling runs with the average and
 * leaves the live weights in place; N has no average and its sample is its own. */
static void check_ema(int warmup)
{
    tcase t;
    char text[1400];
    snprintf(text, sizeof text, HEAD("flatten(pixels / 255)")
             "  batch: 8\n"
             "models:\n"
             "  M:\n"
             "    in: 4\n"
             "    layers: [linear 784]\n"
             "    ema: 0.75\n"
             "%s"
             "  N: {in: 784, layers: [linear 4]}\n"
             "train:\n"
             "  epochs: 1\n"
             "  optimizers:\n"
             "    opt: {type: sgd, lr: 0.01, params: M}\n"
             "    opt_n: {type: sgd, lr: 0.01, params: N}\n"
             "  step:\n"
             "    - update opt: mse(M(N(x)), x)\n"
             "    - update opt_n: mean(N(x) ** 2)\n"
             "sample:\n"
             "  m:\n"
             "    count: 2\n"
             "    image: M(ones(n, 4))\n"
             "  n:\n"
             "    count: 2\n"
             "    image: concat(N(ones(n, 784)), zeros(n, 780))\n",
             warmup ? "    ema_warmup: true\n" : "");
    const char *name = warmup ? "ema with warmup" : "ema";
    if (!build_ok(&t, text, "%s: the spec builds", name)) return;
    ag_params *ps = &t.p.params;
    int iw = ag_params_find(ps, "M.0.weight"), ib = ag_params_find(ps, "M.0.bias");
    int ew = ag_params_find(ps, "ema.M.0.weight"), eb = ag_params_find(ps, "ema.M.0.bias");
    ok(iw >= 0 && ew >= 0 && eb >= 0 && ag_params_find(ps, "ema.N.0.weight") < 0 &&
       ps->n == 6, "%s: M's averages are parameters ema.M.0.weight and ema.M.0.bias; N has none", name);
    int64_t nw = 784 * 4 + 784;
    ok(t.p.nema == 1 && t.p.ema[0].nruns == 1 && t.p.ema[0].runs[0].len == nw,
       "%s: M's weight and bias are averaged as one run of floats", name);
    float *want = malloc((size_t)nw * sizeof *want);
    memcpy(want, ps->p[iw].data, (size_t)nw * sizeof *want);
    int same = !memcmp(ps->p[ew].data, want, (size_t)nw * sizeof *want);
    ok(same, "%s: the average starts as the initial weights", name);
    rng r;
    rng_seed(&r, 3);
    for (int k = 0; k < 8 * 28 * 28; k++) t.p.pixels->data[k] = floorf(256 * rng_uniform(&r));
    float worst = 0;
    for (int step = 1; step <= 4; step++) {
        pg_train_step(&t.p, 8);
        double d = 0.75;
        if (warmup && (1.0 + step) / (10.0 + step) < d) d = (1.0 + step) / (10.0 + step);
        for (int64_t k = 0; k < nw; k++) {
            want[k] = (float)d * want[k] + (1 - (float)d) * ps->p[iw].data[k];
            worst = fmaxf(worst, fabsf(ps->p[ew].data[k] - want[k]));
        }
    }
    is_close(worst, 0, 1e-7, 0, "%s: after 4 steps the average is d ema + (1 - d) w, step by step", name);
    float live = ps->p[iw].data[0];
    ag_error err;
    ok(pg_sample(&t.p, 0, 1, &err) == AG_OK, "%s: M's section samples", name);
    double img = ps->p[eb].data[0];
    for (int j = 0; j < 4; j++) img += ps->p[ew].data[j];
    is_close(t.p.samples[0].image->data[0], img, 1e-4, 1e-5,
             "%s: the sample is the averaged model's output", name);
    ok(ps->p[iw].data[0] == live && ps->p[ib].data[0] != ps->p[eb].data[0],
       "%s: after sampling the live weights are back in place", name);
    int in = ag_params_find(ps, "N.0.weight"), inb = ag_params_find(ps, "N.0.bias");
    ok(pg_sample(&t.p, 1, 1, &err) == AG_OK, "%s: N's section samples", name);
    img = ps->p[inb].data[0];
    for (int j = 0; j < 784; j++) img += ps->p[in].data[j];
    is_close(t.p.samples[1].image->data[0], img, 1e-4, 1e-5,
             "%s: a model without ema samples with its own weights", name);
    free(want);
    release(&t);
}

static void test_ema(void)
{
    check_ema(0);
    check_ema(1);
    expect_error("ema_warmup without ema",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  M: {in: 784, layers: [linear 1], ema_warmup: true}\n",
                 8, 48, "'ema_warmup' needs 'ema', the decay, on the same model");
    expect_error("an ema decay above 1",
                 HEAD("flatten(pixels / 255)")
                 "models:\n"
                 "  M: {in: 784, layers: [linear 1], ema: 1.5}\n",
                 8, 41, "'ema' must be a number in [0, 1], got '1.5'");
}

/* A strip records the first image before the loop, after every 3 passes and at the
 * end: for 10 passes of the loop above, after 0, 3, 6, 9 and 10 passes, each frame
 * 1 + the alpha_bar[t - 1] added so far. */
static void test_strip(void)
{
    tcase t;
    int rc = build(&t, WALK_SPEC("    - update opt: mean(M(x))\n", "    count: 2\n"
                                                                   "    strip: {every: 3}\n"));
    if (!ok(rc == AG_OK, "a section with a strip builds")) {
        diag("%s", t.err.msg);
        release(&t);
        return;
    }
    const pg_sampler *q = &t.p.samples[0];
    ok(q->strip_frames == 5, "10 passes, a frame every 3: 5 frames (got %d)", q->strip_frames);
    ag_error err;
    ok(pg_sample(&t.p, 0, 1, &err) == AG_OK, "the section with a strip samples");
    static const int after[5] = {0, 3, 6, 9, 10};
    float worst = 0;
    for (int f = 0; f < 5; f++) {
        double want = 0;
        for (int pass = 0; pass < after[f]; pass++) {
            int tv = 9 - pass;
            want += tv >= 1 ? t.p.sched[2][tv - 1] : 1;
        }
        for (int j = 0; j < 784; j++) worst = fmaxf(worst, fabsf(q->strip[f * 784 + j] - (float)want));
    }
    is_close(worst, 0, 1e-5, 0, "the frames hold x after 0, 3, 6, 9 and 10 passes");
    ok(!memcmp(q->strip + 4 * 784, q->image->data, 784 * sizeof(float)),
       "the last frame is the first sample");
    release(&t);

    expect_error("a strip without a loop",
                 ONE_LAYER
                 "sample:\n"
                 "  image: zeros(n, 784)\n"
                 "  strip: {every: 10}\n",
                 16, 10, "sample: 'strip' records the passes of a loop, and this section has none");
    expect_error("a strip every 0 passes",
                 ONE_LAYER
                 "sample:\n"
                 "  image: zeros(n, 784)\n"
                 "  strip: {every: 0}\n",
                 16, 18, "'every' must be an integer in [1, 1000000], got '0'");
}

/* MADE's masks make it autoregressive: flipping pixel j changes no output at or
 * before j, and some output after j does depend on it. */
static void test_made_causality(void)
{
    tcase t;
    int rc = build(&t, HEAD("flatten(threshold(pixels, 127))")
                   "  batch: 2\n"
                   "models:\n"
                   "  m: {in: 784, layers: [made 64, relu, made 64, relu, made_output 784]}\n"
                   "train:\n"
                   "  epochs: 1\n"
                   "  optimizers: {opt: {type: adam, params: m}}\n"
                   "  step:\n"
                   "    - logits = m(x)\n"
                   "    - loss = bce_with_logits(logits, x, sum)\n"
                   "    - update opt: loss\n");
    if (!ok(rc == AG_OK, "a MADE spec builds")) {
        diag("%s", t.err.msg);
        release(&t);
        return;
    }
    ag_node *logits = NULL;
    for (int k = 0; k < t.p.nnamed; k++)
        if (!strcmp(t.p.named[k], "logits")) logits = t.p.named_nodes[k];
    rng r;
    rng_seed(&r, 5);
    for (int k = 0; k < 2 * 784; k++) t.p.pixels->data[k] = rng_uniform(&r) < 0.3f ? 255.0f : 0.0f;
    static float before[784];
    int causal = 1, depends = 1;
    static const int flips[] = {0, 1, 100, 400, 700};
    for (size_t f = 0; f < AG_COUNTOF(flips); f++) {
        int j = flips[f];
        pg_eval_step(&t.p, 2);
        memcpy(before, logits->data, sizeof before);
        t.p.pixels->data[j] = 255.0f - t.p.pixels->data[j];
        pg_eval_step(&t.p, 2);
        for (int d = 0; d <= j; d++) causal &= logits->data[d] == before[d];
        int later = 0;
        for (int d = j + 1; d < 784; d++) later |= logits->data[d] != before[d];
        if (!later) diag("pixel %d changes nothing after it", j);
        depends &= later;
    }
    ok(causal, "flipping pixel j leaves outputs 0..j unchanged");
    ok(depends, "flipping pixel j changes some output after j");
    release(&t);
}

/* Other orders and connectivities: the outputs that flipping each pixel changes form an
 * order -- no output depends on its own pixel, and no two on each other's -- and in
 * the reversed order, output d depends only on pixels after d. */
static void made_order_case(const char *model, int reversed, const char *name)
{
    char text[2048];
    snprintf(text, sizeof text, HEAD("flatten(threshold(pixels, 127))") "  batch: 1\n"
             "models:\n"
             "  m: %s\n"
             "train:\n"
             "  epochs: 1\n"
             "  optimizers: {opt: {type: adam, params: m}}\n"
             "  step:\n"
             "    - logits = m(x)\n"
             "    - loss = bce_with_logits(logits, x, sum)\n"
             "    - update opt: loss\n", model);
    tcase t;
    if (!build_ok(&t, text, "%s: builds", name)) return;
    ag_node *logits = NULL;
    for (int k = 0; k < t.p.nnamed; k++)
        if (!strcmp(t.p.named[k], "logits")) logits = t.p.named_nodes[k];
    static unsigned char dep[784][784]; /* dep[d][j]: output d changes with pixel j */
    static float before[784];
    for (int k = 0; k < 784; k++) t.p.pixels->data[k] = k % 3 ? 0.0f : 255.0f;
    pg_eval_step(&t.p, 1);
    memcpy(before, logits->data, sizeof before);
    for (int j = 0; j < 784; j++) {
        t.p.pixels->data[j] = 255.0f - t.p.pixels->data[j];
        pg_eval_step(&t.p, 1);
        for (int d = 0; d < 784; d++) dep[d][j] = logits->data[d] != before[d];
        t.p.pixels->data[j] = 255.0f - t.p.pixels->data[j];
    }
    int self = 0, both = 0, backwards = 0, any = 0;
    for (int d = 0; d < 784; d++)
        for (int j = 0; j < 784; j++) {
            any |= dep[d][j];
            self |= d == j && dep[d][j];
            both |= d < j && dep[d][j] && dep[j][d];
            backwards |= reversed && dep[d][j] && j <= d;
        }
    ok(any && !self && !both, "%s: no output depends on its own pixel, nor two on each other's", name);
    if (reversed) ok(!backwards, "%s: output d depends only on pixels after d", name);
    release(&t);
}

/* Sampling in any order without knowing it: with the uniform noise u fixed, D passes of
 * x = [sigmoid(made(x)) > u] fix the pixels one degree per pass, so that D passes give
 * the sequential sample, and one more pass changes nothing. */
static int made_sample_passes(int passes, float *out, int n)
{
    char text[2048];
    snprintf(text, sizeof text, HEAD("flatten(threshold(pixels, 127))") "models:\n"
             "  m: {in: 784, layers: [made 32 order=random connect=random, relu, made_output 784]}\n"
             "train:\n"
             "  epochs: 1\n"
             "  optimizers: {opt: {type: adam, params: m}}\n"
             "  step:\n"
             "    - loss = bce_with_logits(m(x), x, sum)\n"
             "    - update opt: loss\n"
             "sample:\n"
             "  count: 2\n"
             "  steps:\n"
             "    - x = zeros(n, 784)\n"
             "    - u = rand(n, 784)\n"
             "  loop: {var: i, from: 1, to: %d, steps: ['x = threshold(sigmoid(m(x)) - u, 0)']}\n"
             "  image: x\n", passes);
    tcase t;
    ag_error err;
    int rc = build(&t, text);
    if (rc == AG_OK) rc = pg_sample(&t.p, 0, 9, &err);
    if (rc == AG_OK) memcpy(out, t.p.samples[0].image->data, (size_t)n * sizeof *out);
    else diag("%s", t.err.msg);
    release(&t);
    return rc;
}

static void test_made_sample_any_order(void)
{
    static float a[2 * 784], b[2 * 784];
    if (!ok(made_sample_passes(784, a, 2 * 784) == AG_OK && made_sample_passes(785, b, 2 * 784) == AG_OK,
            "a random-order MADE samples with fixed noise"))
        return;
    ok(!memcmp(a, b, sizeof a), "after 784 passes the sample is a fixed point: a 785th changes nothing");
}

static void test_made_orders(void)
{
    made_order_case("{in: 784, layers: [made 64 order=reversed, relu, made 64, relu, made_output 784]}", 1,
                    "MADE in reversed order");
    made_order_case("{in: 784, layers: [made 64 order=random connect=random seed=3, relu, made 64 connect=random, "
                    "relu, made_output 784]}", 0, "MADE in a random order, random connectivity");
    made_order_case("{in: 784, nodes: {h: 'relu(made(x, 64, order=reversed, connect=random))', "
                    "logits: 'made_output(h, 784)'}}", 1, "a graph-form MADE in reversed order");
#define MADE_SPEC(model)                                                               \
    HEAD("flatten(threshold(pixels, 127))")                                            \
    "models:\n"                                                                        \
    "  m: " model "\n"                                                                  \
    "train:\n"                                                                         \
    "  epochs: 1\n"                                                                    \
    "  optimizers: {opt: {type: adam, params: m}}\n"                                   \
    "  step:\n"                                                                        \
    "    - loss = bce_with_logits(m(x), x, sum)\n"                                     \
    "    - update opt: loss\n"
#define STACK(layers) "{in: 784, layers: [" layers "]}"
#define GRAPH(h) "{in: 784, nodes: {h: '" h "', logits: 'made_output(h, 784)'}}"
    static const struct {
        const char *name, *spec;
        int line, col;
        const char *want;
    } cases[] = {
        {"an order on a later masked layer",
         MADE_SPEC(STACK("made 64, relu, made 64 order=reversed, relu, made_output 784")), 8, 40,
         "made: 'order' belongs to the first masked layer of the model, which fixes the inputs' order"},
        {"an order that is no word of order's", MADE_SPEC(STACK("made 64 order=randon, relu, made_output 784")),
         8, 39, "made: 'order' must be natural, reversed or random, got 'randon'; did you mean 'random'?"},
        {"an order given as a number", MADE_SPEC(STACK("made 64 order=2, relu, made_output 784")), 8, 39,
         "made: 'order' must be natural, reversed or random, got 2"},
        {"connect's words", MADE_SPEC(STACK("made 64 connect=uniform, relu, made_output 784")), 8, 41,
         "made: 'connect' must be even or random, got 'uniform'"},
        {"a word where a number belongs", MADE_SPEC(STACK("made many, relu, made_output 784")), 8, 30,
         "made: 'out' must be a number, got 'many'"},
        {"a quoted layer: its own columns, one in from the quote",
         MADE_SPEC(STACK("'made 64 order=randon', relu, made_output 784")), 8, 40,
         "made: 'order' must be natural, reversed or random, got 'randon'; did you mean 'random'?"},
        {"a quoted layer with an escape: the quote, its text being no longer what is written",
         MADE_SPEC(STACK("\"made\\t64 order=randon\", relu, made_output 784")), 8, 25,
         "made: 'order' must be natural, reversed or random, got 'randon'; did you mean 'random'?"},
        {"a graph's word that is none of connect's",
         MADE_SPEC(GRAPH("relu(made(x, 64, order=random, connect=randum))")), 8, 67,
         "made: 'connect' must be even or random, got 'randum'; did you mean 'random'?"},
        {"a graph's argument that made does not have, named before its value is read",
         MADE_SPEC(GRAPH("relu(made(x, 64, ordr=random))")), 8, 45,
         "made has no argument 'ordr'; did you mean 'order'?"},
    };
    for (size_t k = 0; k < AG_COUNTOF(cases); k++)
        expect_error(cases[k].name, cases[k].spec, cases[k].line, cases[k].col, cases[k].want);
#undef GRAPH
#undef STACK
#undef MADE_SPEC
}

/* specs/char-gpt.yaml is causal: changing the token at position j changes no output
 * (the next-token logits) before j, and changes the one at j. Built for windows of 65
 * tokens in a vocabulary of 100; no data is read. */
static void test_char_gpt_causality(void)
{
    sp_spec s;
    pg_program p;
    ag_error err;
    int loaded = sp_load(&s, "specs/char-gpt.yaml", NULL, 0, &err) == AG_OK;
    int rc = loaded ? pg_build(&p, &s, 1, 65, 100, &err) : AG_ERR;
    if (!ok(rc == AG_OK, "specs/char-gpt.yaml builds for windows of 65 tokens")) {
        diag("%s", err.msg);
        if (loaded) pg_free(&p); /* pg_free cleans up after a failed build too */
        sp_free(&s);
        return;
    }
    ag_node *logits = NULL;
    for (int k = 0; k < p.step.n; k++)
        if (p.step.nodes[k]->op == AG_OP_CROSS_ENTROPY) logits = p.step.nodes[k]->src[0];
    ok(logits && logits->shape.ndim == 3 && logits->shape.d[1] == 64 && logits->shape.d[2] == 100,
       "its logits are [B, 64, 100]");
    rng r;
    rng_seed(&r, 3);
    for (int k = 0; k < 2 * 65; k++) p.pixels->data[k] = (float)rng_below(&r, 100);
    static float before[2 * 64 * 100];
    int causal = 1, depends = 1;
    static const int flips[] = {0, 1, 31, 63};
    for (size_t f = 0; f < AG_COUNTOF(flips); f++) {
        int j = flips[f];
        pg_eval_step(&p, 2);
        memcpy(before, logits->data, sizeof before);
        float *tok = &p.pixels->data[65 + j]; /* the second window's position j */
        *tok = (float)(((int)*tok + 1) % 100);
        pg_eval_step(&p, 2);
        for (int k = 0; k < 64 * 100; k++) causal &= logits->data[k] == before[k]; /* the first window */
        for (int k = 64 * 100; k < (64 + j) * 100; k++) causal &= logits->data[k] == before[k];
        int at = 0;
        for (int k = (64 + j) * 100; k < (65 + j) * 100; k++) at |= logits->data[k] != before[k];
        depends &= at;
    }
    ok(causal, "char-gpt: changing the token at j leaves every output before j unchanged");
    ok(depends, "char-gpt: and changes the output at j");
    pg_free(&p);
    sp_free(&s);
}

int main(void)
{
    test_counts();
    test_graph_model();
    test_every();
    test_spectral_layers();
    test_batch_parts();
    test_errors();
    test_training();
    test_eval_graphs();
    test_sampling_loop();
    test_made_causality();
    test_char_gpt_causality();
    test_made_orders();
    test_made_sample_any_order();
    test_ema();
    test_strip();
    return tap_done();
}
