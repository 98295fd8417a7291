/* quality.c — feature statistics, Fréchet distance, classifier score, class histogram;
 * a classifier spec run on generated images. */
#include "aigc/quality.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aigc/ckpt.h"
#include "aigc/metrics.h"
#include "aigc/sample.h"

/* LAPACK's symmetric eigensolver (divide and conquer), from OpenBLAS. The two trailing
 * lengths are the hidden arguments gfortran passes with each character argument. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len,
             size_t uplo_len);

/* ---------------------------------------------------- feature statistics -- */

void qm_stats_init(qm_stats *s, int dim)
{
    AG_ASSERT(dim >= 1);
    s->dim = dim;
    s->count = 0;
    s->mean = ag_xcalloc((size_t)dim, sizeof *s->mean);
    s->comoment = ag_xcalloc((size_t)dim * (size_t)dim, sizeof *s->comoment);
    s->scratch = ag_xcalloc(2 * (size_t)dim, sizeof *s->scratch);
}

void qm_stats_free(qm_stats *s)
{
    free(s->mean);
    free(s->comoment);
    free(s->scratch);
    memset(s, 0, sizeof *s);
}

/* The batch's own mean and co-moment first, then Chan's merge: with delta the
 * difference of the means, C = Ca + Cb + delta delta^T na nb / n. Only the upper
 * triangle (j >= i) is kept; qm_stats_cov mirrors it. */
void qm_stats_add(qm_stats *s, const float *x, int64_t n)
{
    if (n <= 0) return;
    int d = s->dim;
    double *mb = s->scratch, *dev = s->scratch + d;
    for (int i = 0; i < d; i++) mb[i] = 0;
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < d; i++) mb[i] += x[r * d + i];
    for (int i = 0; i < d; i++) mb[i] /= (double)n;
    for (int64_t r = 0; r < n; r++) {
        for (int i = 0; i < d; i++) dev[i] = x[r * d + i] - mb[i];
        for (int i = 0; i < d; i++) {
            double di = dev[i], *row = s->comoment + (size_t)i * d;
            for (int j = i; j < d; j++) row[j] += di * dev[j];
        }
    }
    double na = (double)s->count, nb = (double)n, nt = na + nb;
    for (int i = 0; i < d; i++) dev[i] = mb[i] - s->mean[i];
    for (int i = 0; i < d; i++) {
        double *row = s->comoment + (size_t)i * d;
        for (int j = i; j < d; j++) row[j] += dev[i] * dev[j] * na * nb / nt;
        s->mean[i] += dev[i] * nb / nt;
    }
    s->count += n;
}

void qm_stats_cov(const qm_stats *s, double *cov)
{
    int d = s->dim;
    double div = s->count > 1 ? (double)(s->count - 1) : 1.0;
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) cov[(size_t)i * d + j] = cov[(size_t)j * d + i] = s->comoment[(size_t)i * d + j] / div;
}

/* ------------------------------------------------------ Fréchet distance -- */

int qm_eig_sym(int d, double *a, double *w, int vectors, ag_error *err)
{
    const char *jobz = vectors ? "V" : "N";
    int lwork = -1, liwork = -1, iwq, info;
    double wq;
    dsyevd_(jobz, "U", &d, a, &d, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info) return ag_errorf(err, (ag_loc){0}, "the eigendecomposition failed (dsyevd info %d)", info);
    lwork = (int)wq;
    liwork = iwq;
    double *work = ag_xmalloc((size_t)lwork * sizeof *work);
    int *iwork = ag_xmalloc((size_t)liwork * sizeof *iwork);
    dsyevd_(jobz, "U", &d, a, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info) return ag_errorf(err, (ag_loc){0}, "the eigendecomposition failed (dsyevd info %d)", info);
    return AG_OK;
}

/* out = a^1/2 for a symmetric positive semi-definite: V diag(sqrt(max(w, 0))) V^T. */
static int sqrt_psd_impl(int d, const double *a, double *out, ag_error *err)
{
    size_t dd = (size_t)d * d;
    double *v = ag_xmalloc(dd * sizeof *v), *w = ag_xmalloc((size_t)d * sizeof *w);
    double *vs = ag_xmalloc(dd * sizeof *vs);
    memcpy(v, a, dd * sizeof *v);
    int rc = qm_eig_sym(d, v, w, 1, err);
    if (rc == AG_OK) {
        /* Row-major, v's row j is eigenvector j: out = v^T diag(s) v. */
        for (int j = 0; j < d; j++) {
            double sj = sqrt(fmax(w[j], 0.0));
            for (int i = 0; i < d; i++) vs[(size_t)j * d + i] = v[(size_t)j * d + i] * sj;
        }
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, v, d, vs, d, 0.0, out, d);
    }
    free(v);
    free(w);
    free(vs);
    return rc;
}

/* Tr((S1^1/2 S2 S1^1/2)^1/2) is the sum of the square roots of the eigenvalues of the
 * symmetric M = S1^1/2 S2 S1^1/2 (the same as those of S1 S2, but M keeps the problem
 * symmetric, so the eigenvalues are real and accurate). */
int qm_frechet(int d, const double *mu1, const double *cov1, const double *mu2, const double *cov2,
               double *out, ag_error *err)
{
    size_t dd = (size_t)d * d;
    double *h = ag_xmalloc(dd * sizeof *h), *t = ag_xmalloc(dd * sizeof *t);
    double *m = ag_xmalloc(dd * sizeof *m), *w = ag_xmalloc((size_t)d * sizeof *w);
    int rc = sqrt_psd_impl(d, cov1, h, err);
    if (rc == AG_OK) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, h, d, cov2, d, 0.0, t, d);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, t, d, h, d, 0.0, m, d);
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j < d; j++)
                m[(size_t)i * d + j] = m[(size_t)j * d + i] = 0.5 * (m[(size_t)i * d + j] + m[(size_t)j * d + i]);
        rc = qm_eig_sym(d, m, w, 0, err);
    }
    if (rc == AG_OK) {
        double dist = 0, trace = 0, root = 0;
        for (int i = 0; i < d; i++) {
            dist += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
            trace += cov1[(size_t)i * d + i] + cov2[(size_t)i * d + i];
            root += sqrt(fmax(w[i], 0.0));
        }
        /* Rounding can leave a tiny negative value for equal statistics. */
        *out = fmax(dist + trace - 2 * root, 0.0);
    }
    free(h);
    free(t);
    free(m);
    free(w);
    return rc;
}

int qm_frechet_stats(const qm_stats *a, const qm_stats *b, double *out, ag_error *err)
{
    AG_ASSERT(a->dim == b->dim);
    if (a->count < 2 || b->count < 2)
        return ag_errorf(err, (ag_loc){0}, "a Fréchet distance needs at least 2 images on each side (got %lld and %lld)",
                         (long long)a->count, (long long)b->count);
    size_t dd = (size_t)a->dim * a->dim;
    double *c1 = ag_xmalloc(dd * sizeof *c1), *c2 = ag_xmalloc(dd * sizeof *c2);
    qm_stats_cov(a, c1);
    qm_stats_cov(b, c2);
    int rc = qm_frechet(a->dim, a->mean, c1, b->mean, c2, out, err);
    free(c1);
    free(c2);
    return rc;
}

/* ----------------------------------------------------- class predictions -- */

void qm_classes_init(qm_classes *c, int classes)
{
    AG_ASSERT(classes >= 1);
    c->classes = classes;
    c->count = 0;
    c->neg_entropy = 0;
    c->asked = c->matched = 0;
    c->marginal = ag_xcalloc((size_t)classes, sizeof *c->marginal);
    c->hist = ag_xcalloc((size_t)classes, sizeof *c->hist);
}

void qm_classes_free(qm_classes *c)
{
    free(c->marginal);
    free(c->hist);
    memset(c, 0, sizeof *c);
}

/* The first class with the largest probability of the row. */
static int argmax_impl(const float *row, int classes)
{
    int best = 0;
    for (int y = 1; y < classes; y++)
        if (row[y] > row[best]) best = y;
    return best;
}

void qm_classes_add(qm_classes *c, const float *p, int64_t n)
{
    int k = c->classes;
    for (int64_t r = 0; r < n; r++) {
        const float *row = p + r * k;
        for (int y = 0; y < k; y++) {
            double q = row[y];
            if (q > 0) c->neg_entropy += q * log(q);
            c->marginal[y] += q;
        }
        c->hist[argmax_impl(row, k)]++;
    }
    c->count += n;
}

void qm_classes_match(qm_classes *c, const float *p, const uint8_t *labels, int64_t n)
{
    for (int64_t r = 0; r < n; r++) c->matched += argmax_impl(p + r * c->classes, c->classes) == labels[r];
    c->asked += n;
}

double qm_class_match(const qm_classes *c) { return c->asked ? (double)c->matched / (double)c->asked : NAN; }

void qm_softmax_rows(float *x, int64_t n, int classes)
{
    for (int64_t r = 0; r < n; r++) {
        float *row = x + r * classes, top = row[0];
        for (int y = 1; y < classes; y++) top = fmaxf(top, row[y]);
        double sum = 0;
        for (int y = 0; y < classes; y++) sum += exp((double)row[y] - top);
        for (int y = 0; y < classes; y++) row[y] = (float)(exp((double)row[y] - top) / sum);
    }
}

/* E_x KL(p(y|x) || p(y)) = E_x sum_y p(y|x) log p(y|x) - sum_y p(y) log p(y), since
 * p(y) is the mean of p(y|x): one pass suffices. */
double qm_score(const qm_classes *c)
{
    if (c->count == 0) return NAN;
    double n = (double)c->count, h = 0;
    for (int y = 0; y < c->classes; y++) {
        double q = c->marginal[y] / n;
        if (q > 0) h -= q * log(q);
    }
    return exp(fmax(h + c->neg_entropy / n, 0.0));
}

double qm_coverage(const qm_classes *c, double share)
{
    int covered = 0;
    for (int y = 0; y < c->classes; y++) covered += (double)c->hist[y] >= share * (double)c->count;
    return (double)covered / c->classes;
}

double qm_hist_kl(const qm_classes *c)
{
    if (c->count == 0) return NAN;
    double kl = 0;
    for (int y = 0; y < c->classes; y++) {
        double h = (double)c->hist[y] / (double)c->count;
        if (h > 0) kl += h * log(h * c->classes);
    }
    return kl;
}

/* ------------------------------------------------------------ classifier -- */

static ag_node *named_node(const pg_program *p, const char *name)
{
    for (int k = 0; k < p->nnamed; k++)
        if (!strcmp(p->named[k], name)) return p->named_nodes[k];
    return NULL;
}

static int open_impl(qm_classifier *c, const char *spec_path, const char *weights, ag_error *err)
{
    /* Each stage is freed after a failure of its own, as the command line does. */
    c->loaded = 1;
    if (sp_load(&c->spec, spec_path, NULL, 0, err)) return AG_ERR;
    if (ds_load(&c->spec, &c->data, err)) return AG_ERR;
    c->loaded = 2;
    const idx_dataset *tr = &c->data.train;
    c->loaded = 3;
    if (pg_build(&c->prog, &c->spec, tr->rows, tr->cols, tr->classes, err)) return AG_ERR;
    ag_loc at = {spec_path, 0, 0};
    if (c->spec.nsteps) at = c->spec.steps[0]->loc;
    c->logits = mt_logits(&c->prog);
    if (!c->logits)
        return ag_errorf(err, at, "a classifier's step must name its logits [B, %d]: logits, features = C(x)",
                         tr->classes);
    c->features = named_node(&c->prog, "features");
    if (!c->features || !c->features->batched || c->features->shape.ndim != 2)
        return ag_errorf(err, at, "a classifier's step must name its features [B, F] (the penultimate layer): "
                                  "logits, features = C(x)");
    if (!c->data.has_test)
        return ag_errorf(err, c->spec.data.path_loc, "the classifier's data has no test split to compare with");

    char buf[4800];
    int dflt = !weights;
    weights = dflt ? ck_run_weights(c->spec.name, buf, sizeof buf) : ck_weights_path(weights, buf, sizeof buf);
    ag_error e;
    if (ck_load_weights(weights, &c->prog.params, 0, c->spec.name, &e) == AG_OK) return AG_OK;
    /* Training the classifier's spec writes its default weights, not a path given. */
    char hint[4200] = "";
    if (dflt && access(weights, F_OK)) snprintf(hint, sizeof hint, " (train it first: aigc-run %s)", c->spec.path);
    return ag_errorf(err, (ag_loc){0}, "the classifier's weights: %s%s", e.msg, hint);
}

int qm_classifier_open(qm_classifier *c, const char *spec_path, const char *weights, ag_error *err)
{
    memset(c, 0, sizeof *c);
    if (open_impl(c, spec_path, weights, err) == AG_OK) return AG_OK;
    if (c->loaded) yt_annotate(err, &c->spec.doc);
    qm_classifier_close(c);
    return AG_ERR;
}

void qm_classifier_close(qm_classifier *c)
{
    if (c->loaded >= 3) pg_free(&c->prog);
    if (c->loaded >= 2) ds_free(&c->data);
    if (c->loaded >= 1) sp_free(&c->spec);
    memset(c, 0, sizeof *c);
}

int qm_classify(qm_classifier *c, const float *pixels, const uint8_t *labels, int64_t n, qm_stats *feats,
                qm_classes *classes, ag_error *err)
{
    pg_program *p = &c->prog;
    int batch = c->spec.data.batch, k = p->classes;
    int64_t px = (int64_t)p->rows * p->cols;
    float *prob = ag_xmalloc((size_t)batch * (size_t)k * sizeof *prob);
    int rc = AG_OK;
    for (int64_t at = 0; at < n && rc == AG_OK; at += batch) {
        int nb = (int)(n - at < batch ? n - at : batch);
        memcpy(p->pixels->data, pixels + at * px, (size_t)(nb * px) * sizeof(float));
        memset(p->labels->data, 0, (size_t)nb * sizeof(float)); /* the loss needs some label */
        if (pg_eval_step(p, nb)) {
            *err = p->step.err;
            rc = AG_ERR;
            break;
        }
        if (feats) qm_stats_add(feats, c->features->data, nb);
        if (classes) {
            memcpy(prob, c->logits->data, (size_t)nb * (size_t)k * sizeof *prob);
            qm_softmax_rows(prob, nb, k);
            qm_classes_add(classes, prob, nb);
            if (labels) qm_classes_match(classes, prob, labels + at, nb);
        }
    }
    free(prob);
    return rc;
}

/* ------------------------------------------------------------- measuring -- */

/* The test split through the classifier: the reference statistics. */
static int reference_impl(qm_classifier *c, qm_stats *feats, qm_classes *classes, ag_error *err)
{
    const idx_dataset *t = &c->data.test;
    int64_t px = (int64_t)t->rows * t->cols, chunk = 1024;
    float *buf = ag_xmalloc((size_t)(chunk * px) * sizeof *buf);
    int rc = AG_OK;
    for (int64_t at = 0; at < t->count && rc == AG_OK; at += chunk) {
        int64_t n = t->count - at < chunk ? t->count - at : chunk;
        for (int64_t j = 0; j < n * px; j++) buf[j] = t->images.data[at * px + j];
        rc = qm_classify(c, buf, NULL, n, feats, classes, err);
    }
    free(buf);
    return rc;
}

/* Values in lo..hi to whole pixels 0..255, as the sample grid's PNG shows them. */
static void to_pixels(const float *x, int64_t n, float lo, float hi, float *out)
{
    for (int64_t j = 0; j < n; j++) {
        double v = isfinite(x[j]) ? ((double)x[j] - lo) / ((double)hi - lo) : 0.0;
        out[j] = (float)nearbyint(255.0 * fmin(fmax(v, 0.0), 1.0));
    }
}

static int generated_impl(pg_program *p, int k, const ds_data *d, qm_classifier *c, int64_t n, uint64_t seed,
                          qm_stats *feats, qm_classes *classes, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    int64_t px = (int64_t)p->rows * p->cols;
    float *buf = ag_xmalloc((size_t)((int64_t)q->images * px) * sizeof *buf);
    uint8_t *labels = q->label ? ag_xmalloc((size_t)q->images) : NULL;
    int rc = AG_OK;
    for (int64_t done = 0, draw = 0; done < n && rc == AG_OK; draw++) {
        rc = sa_draw(p, k, d, done, seed + (uint64_t)draw, err);
        if (rc) break;
        int64_t m = n - done < q->images ? n - done : q->images;
        if (labels && (rc = sa_bytes(p, k, m, done, NULL, labels, err))) break;
        const float *x = q->image->data;
        float lo = q->lo, hi = q->hi;
        if (!(lo < hi)) {
            /* No known range: the draw's own, as the grid does. */
            lo = INFINITY, hi = -INFINITY;
            for (int64_t j = 0; j < q->images * px; j++)
                if (isfinite(x[j])) lo = fminf(lo, x[j]), hi = fmaxf(hi, x[j]);
            if (!(lo < hi)) lo = 0, hi = 1;
        }
        to_pixels(x, m * px, lo, hi, buf);
        rc = qm_classify(c, buf, labels, m, feats, classes, err);
        done += m;
    }
    free(buf);
    free(labels);
    return rc;
}

int qm_measure(pg_program *p, int k, const ds_data *d, qm_classifier *c, int64_t n, uint64_t seed,
               qm_report *r, ag_error *err)
{
    const pg_sampler *q = &p->samples[k];
    const pg_program *cp = &c->prog;
    ag_loc at = q->spec->image->loc;
    if (q->channels != 1)
        return ag_errorf(err, at, "%s: the classifier takes one-channel images; these have %d channels",
                         q->spec->name, q->channels);
    if (p->rows != cp->rows || p->cols != cp->cols)
        return ag_errorf(err, at, "%s: the images are %dx%d, but the classifier's are %dx%d", q->spec->name,
                         p->rows, p->cols, cp->rows, cp->cols);
    AG_ASSERT(cp->classes <= (int)AG_COUNTOF(r->hist));
    memset(r, 0, sizeof *r);
    int dim = (int)c->features->shape.d[1];
    qm_stats real, fake;
    qm_classes real_cls, fake_cls;
    qm_stats_init(&real, dim);
    qm_stats_init(&fake, dim);
    qm_classes_init(&real_cls, cp->classes);
    qm_classes_init(&fake_cls, cp->classes);
    int rc = reference_impl(c, &real, &real_cls, err);
    if (rc == AG_OK) rc = generated_impl(p, k, d, c, n, seed, &fake, &fake_cls, err);
    if (rc == AG_OK) rc = qm_frechet_stats(&fake, &real, &r->frechet, err);
    if (rc == AG_OK) {
        r->samples = fake.count;
        r->reference = real.count;
        r->classes = cp->classes;
        r->score = qm_score(&fake_cls);
        r->test_score = qm_score(&real_cls);
        r->coverage = qm_coverage(&fake_cls, 0.5 / cp->classes);
        r->hist_kl = qm_hist_kl(&fake_cls);
        r->labelled = q->label != NULL;
        r->class_match = qm_class_match(&fake_cls);
        for (int y = 0; y < cp->classes; y++) r->hist[y] = fake_cls.hist[y];
    }
    qm_stats_free(&real);
    qm_stats_free(&fake);
    qm_classes_free(&real_cls);
    qm_classes_free(&fake_cls);
    return rc;
}

static void num_impl(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.9g", v);
    else
        fputs("null", out);
}

void qm_print(const qm_report *r, FILE *out, int json)
{
    /* class_match last, and only for a section with label:. */
    const char *names[] = {"frechet", "score", "test_score", "coverage", "hist_kl", "class_match"};
    double values[] = {r->frechet, r->score, r->test_score, r->coverage, r->hist_kl, r->class_match};
    size_t shown = AG_COUNTOF(names) - !r->labelled;
    if (json) {
        fprintf(out, "{\"samples\":%lld,\"reference\":%lld", (long long)r->samples, (long long)r->reference);
        for (size_t k = 0; k < shown; k++) {
            fprintf(out, ",\"%s\":", names[k]);
            num_impl(out, values[k]);
        }
        fputs(",\"hist\":[", out);
        for (int y = 0; y < r->classes; y++) fprintf(out, "%s%lld", y ? "," : "", (long long)r->hist[y]);
        fputs("]}\n", out);
        return;
    }
    fprintf(out, "samples %lld\nreference %lld\n", (long long)r->samples, (long long)r->reference);
    for (size_t k = 0; k < shown; k++) fprintf(out, "%s %.6g\n", names[k], values[k]);
    fputs("hist", out);
    for (int y = 0; y < r->classes; y++) fprintf(out, " %lld", (long long)r->hist[y]);
    fputc('\n', out);
}
