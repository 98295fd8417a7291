/*
 * scatter.h — a picture of feature vectors: their first two principal components, drawn
 * as points coloured by class, with a legend of the colours (prefix sc_).
 *
 *     float *xy = ag_xmalloc(2 * n * sizeof *xy);
 *     double share[2];
 *     if (sc_project(features, n, F, xy, share, &err)) ...     // [n, F] -> [n, 2]
 *     if (sc_write("DIR/scatter.png", xy, labels, n, classes, &err)) ...
 *
 * Features of two values are drawn as they are, one value against 0; more are
 * projected onto the two directions of largest variance (PCA: the eigenvectors of their
 * covariance, from LAPACK's dsyev).
 */
#ifndef AIGC_SCATTER_H
#define AIGC_SCATTER_H

#include <stdint.h>

#include "aigc/base.h"

/* The n rows of x [n, f] as n points xy [n, 2]: for f > 2 the centred rows' coordinates
 * along the covariance's two leading eigenvectors, each signed so that its largest
 * component is positive (LAPACK leaves the sign open); for f <= 2 the values
 * themselves (0 for a missing second). share gets the part of the total variance each
 * coordinate holds (1 and 0 for f == 1). AG_ERR only when LAPACK fails. */
int sc_project(const float *x, int64_t n, int f, float *xy, double share[2], ag_error *err);

/* Draws the points xy [n, 2] as a PNG at path, point i in the colour of class
 * labels[i] (< classes), and the colours' legend on the right. */
int sc_write(const char *path, const float *xy, const uint8_t *labels, int64_t n, int classes, ag_error *err);

#endif
