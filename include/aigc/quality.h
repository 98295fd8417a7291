/*
 * quality.h — how good generated images are, measured with a classifier (prefix qm_).
 *
 * A classifier trained on the real data (specs/classifier.yaml) maps each image to
 * features (its penultimate layer) and to class probabilities (the softmax of its
 * logits). Three numbers compare generated images with the real test split:
 *
 *   Fréchet distance   between Gaussians fitted to the features of the two sets:
 *                      ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
 *                      0 for identical statistics; lower is better. FID is this
 *                      number with Inception features; ours come from the
 *                      classifier, so they compare only with each other.
 *   classifier score   exp(E_x KL(p(y|x) || p(y))): 1 when every image gets the same
 *                      prediction, the number of classes when each image is one class
 *                      with certainty and the classes are equally frequent. (The
 *                      Inception Score, with our classifier.)
 *   class histogram    argmax counts: the share of classes that get at least half
 *                      their fair share (1/classes) of the images ("coverage"; a
 *                      collapsed GAN misses modes), and its KL to the uniform
 *                      distribution.
 *
 * The statistics are accumulated in double over batches, so any number of images
 * passes through in fixed memory:
 *
 *     qm_stats a, b;
 *     qm_stats_init(&a, 128);  qm_stats_init(&b, 128);
 *     for each batch: qm_stats_add(&a, feats, n);      // n rows of 128 floats
 *     ...
 *     double fd;
 *     if (qm_frechet_stats(&a, &b, &fd, &err)) { print err.msg; }
 *
 * The matrix square roots come from symmetric eigendecompositions (LAPACK's dsyevd,
 * in OpenBLAS); eigenvalues that rounding makes slightly negative count as 0.
 *
 * The second half runs whole specs: qm_classifier loads a classifier spec and its
 * weights; qm_measure draws samples from a generative program and reports.
 */
#ifndef AIGC_QUALITY_H
#define AIGC_QUALITY_H

#include <stdint.h>
#include <stdio.h>

#include "aigc/dataset.h"
#include "aigc/program.h"
#include "aigc/spec.h"

/* ----------------------------------------------------- feature statistics -- */

/* Mean and co-moment (the sum of outer products of deviations) of rows of dim
 * values, merged batch by batch (Chan et al.'s update, in double). */
typedef struct qm_stats {
    int dim;
    int64_t count;
    double *mean;      /* [dim] */
    double *comoment;  /* [dim, dim] */
    double *scratch;   /* [dim]: a batch's mean */
} qm_stats;

void qm_stats_init(qm_stats *s, int dim);
void qm_stats_free(qm_stats *s);
/* Adds n rows x[n, dim]. */
void qm_stats_add(qm_stats *s, const float *x, int64_t n);
/* The covariance with n - 1 in the denominator (numpy.cov's default), into cov[dim, dim]. */
void qm_stats_cov(const qm_stats *s, double *cov);
/* Eigenvalues of the symmetric a[d, d] into w (ascending); with vectors, a's rows (a
 * column each in LAPACK's column-major view) become the eigenvectors, in the same
 * order. a is overwritten. AG_ERR only when LAPACK fails. */
int qm_eig_sym(int d, double *a, double *w, int vectors, ag_error *err);

/* The Fréchet distance between N(mu1, cov1) and N(mu2, cov2), d-dimensional, the
 * covariances symmetric positive semi-definite. AG_ERR only when LAPACK fails. */
int qm_frechet(int d, const double *mu1, const double *cov1, const double *mu2, const double *cov2,
               double *out, ag_error *err);
/* The same from two accumulations of the same dim, each of at least 2 rows. */
int qm_frechet_stats(const qm_stats *a, const qm_stats *b, double *out, ag_error *err);

/* ------------------------------------------------------ class predictions -- */

typedef struct qm_classes {
    int classes;
    int64_t count;
    double *marginal;      /* [classes]: the sum of p(y|x) over x */
    double neg_entropy;    /* the sum over x of sum_y p(y|x) log p(y|x) */
    int64_t *hist;         /* [classes]: how many x have their argmax at y */
    int64_t asked;         /* x with a requested class (a conditional model's label:) */
    int64_t matched;       /* ... whose argmax is that class */
} qm_classes;

void qm_classes_init(qm_classes *c, int classes);
void qm_classes_free(qm_classes *c);
/* Adds n rows of probabilities p[n, classes] (each row sums to 1). */
void qm_classes_add(qm_classes *c, const float *p, int64_t n);
/* Counts the n rows of p[n, classes] whose argmax is their requested class, labels[n]. */
void qm_classes_match(qm_classes *c, const float *p, const uint8_t *labels, int64_t n);
/* Rows of logits x[n, classes] to their softmax, in place. */
void qm_softmax_rows(float *x, int64_t n, int classes);

/* exp(E_x KL(p(y|x) || p(y))), computed as exp(H(p(y)) - E_x H(p(y|x))). */
double qm_score(const qm_classes *c);
/* The share of classes that hold at least share of the argmax counts. */
double qm_coverage(const qm_classes *c, double share);
/* KL(histogram || uniform) in nats: 0 for equal counts, log(classes) for one class. */
double qm_hist_kl(const qm_classes *c);
/* The share of the rows qm_classes_match counted whose argmax is their class; NaN when
 * it counted none. */
double qm_class_match(const qm_classes *c);

/* ------------------------------------------------------------ classifier -- */

/* A classifier spec, its data and its trained weights. Its step must name two
 * tensors: `logits` [B, classes] and `features` [B, F], as in
 * `logits, features = C(x)`. */
typedef struct qm_classifier {
    sp_spec spec;
    ds_data data;
    pg_program prog;
    ag_node *logits, *features;
    int loaded;            /* what to free: 1 spec, 2 + data, 3 + program */
} qm_classifier;

/* Loads spec_path, its data and the weights (a safetensors file, or a run directory
 * for its last; NULL: runs/NAME/last.safetensors). Errors carry the spec's places. */
int qm_classifier_open(qm_classifier *c, const char *spec_path, const char *weights, ag_error *err);
void qm_classifier_close(qm_classifier *c);

/* Classifies n images of pixels [n, rows, cols] (0..255, the classifier data's size),
 * adding their features to feats and their probabilities to classes (either NULL), and
 * with classes and labels[n] (or NULL), the classes they were asked for. */
int qm_classify(qm_classifier *c, const float *pixels, const uint8_t *labels, int64_t n, qm_stats *feats,
                qm_classes *classes, ag_error *err);

/* ------------------------------------------------------------- measuring -- */

typedef struct qm_report {
    int64_t samples;       /* generated images measured */
    int64_t reference;     /* real test images they are compared with */
    int classes;
    double frechet;        /* to the test split's features */
    double score;          /* of the generated images */
    double test_score;     /* of the test split: what real images get */
    double coverage;       /* classes with at least half their fair share */
    double hist_kl;        /* KL(histogram || uniform), nats */
    int labelled;          /* the section has a label: */
    double class_match;    /* the share whose argmax is their label */
    int64_t hist[256];
} qm_report;

/* Draws n images from sample section k of p (seeds seed, seed + 1, ... per draw of
 * the section's size; test_x from d, the next test images at each draw), maps them from the section's range to pixels
 * 0..255 as the sample grid does, rounds them, and measures them with c; with the
 * section's label:, also how often c sees the requested class. */
int qm_measure(pg_program *p, int k, const ds_data *d, qm_classifier *c, int64_t n, uint64_t seed,
               qm_report *r, ag_error *err);

/* As lines "quality_NAME VALUE" or one JSON object. */
void qm_print(const qm_report *r, FILE *out, int json);

#endif
