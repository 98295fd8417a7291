/*
 * tap.h — a minimal TAP producer for the C tests (TAP version 13, which Debian 12's
 * prove reads). Every check prints one line; tap_done() prints the plan and returns
 * the exit status, non-zero when any check failed, so `return tap_done();` from main
 * makes prove see the failure twice: in the lines and in the exit code.
 */
#ifndef AIGC_TAP_H
#define AIGC_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failures, tap_started;

static inline void tap_start(void)
{
    if (!tap_started) {
        tap_started = 1;
        printf("TAP version 13\n");
    }
}

__attribute__((format(printf, 2, 3))) static inline int ok(int cond, const char *fmt, ...)
{
    tap_start();
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", cond ? "ok" : "not ok", ++tap_count);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!cond) tap_failures++;
    fflush(stdout);
    return cond;
}

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...)
{
    tap_start();
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* |got - want| <= atol + rtol * |want|, the comparison llm.c and PyTorch use. */
static inline int tap_close(double got, double want, double atol, double rtol)
{
    if (isnan(got) || isnan(want)) return isnan(got) && isnan(want);
    return fabs(got - want) <= atol + rtol * fabs(want);
}

__attribute__((format(printf, 5, 6))) static inline int is_close(double got, double want,
                                                          double atol, double rtol,
                                                          const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int c = ok(tap_close(got, want, atol, rtol), "%s", name);
    if (!c) diag("got %.9g, want %.9g (atol %g, rtol %g)", got, want, atol, rtol);
    return c;
}

__attribute__((format(printf, 3, 4))) static inline int is_str(const char *got, const char *want,
                                                        const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int c = ok(got && want && strcmp(got, want) == 0, "%s", name);
    if (!c) diag("got  '%s'\n# want '%s'", got ? got : "(null)", want ? want : "(null)");
    return c;
}

static inline int tap_done(void)
{
    tap_start();
    printf("1..%d\n", tap_count);
    if (tap_failures) printf("# %d of %d checks failed\n", tap_failures, tap_count);
    return tap_failures ? 1 : 0;
}

#endif
