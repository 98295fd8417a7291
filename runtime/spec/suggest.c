/* suggest.c — edit distance and the "did you mean" hint. */
#include "aigc/suggest.h"

#include <stdio.h>
#include <string.h>

#include "aigc/base.h"

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int min3(int a, int b, int c)
{
    int m = a < b ? a : b;
    return m < c ? m : c;
}

int sg_distance(const char *a, const char *b)
{
    size_t m = strlen(a), n = strlen(b);
    if (m > SG_MAX_LEN || n > SG_MAX_LEN) return SG_MAX_LEN + 1;
    /* Three rows suffice: a swap looks two rows back. */
    int rows[3][SG_MAX_LEN + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= n; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= m; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= n; j++) {
            int ca = lower((unsigned char)a[i - 1]), cb = lower((unsigned char)b[j - 1]);
            int d = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb));
            if (i > 1 && j > 1 && ca == lower((unsigned char)b[j - 2]) &&
                lower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[n];
}

void sg_init(sg_best *b, const char *word)
{
    b->word = word;
    b->best = NULL;
    b->dist = 0;
}

void sg_offer(sg_best *b, const char *candidate)
{
    if (strcmp(candidate, b->word) == 0) return;
    size_t lw = strlen(b->word), lc = strlen(candidate);
    int longer = (int)(lw > lc ? lw : lc);
    int d = sg_distance(b->word, candidate);
    if (d > (longer + 2) / 3 || d >= (int)lw) return;
    if (!b->best || d < b->dist) {
        b->best = candidate;
        b->dist = d;
    }
}

const char *sg_hint(const sg_best *b, char *buf, size_t size)
{
    AG_ASSERT(size > 0);
    if (b->best)
        snprintf(buf, size, "; did you mean '%s'?", b->best);
    else
        buf[0] = 0;
    return buf;
}

const char *sg_suggest(const char *word, const char *const *candidates)
{
    sg_best b;
    sg_init(&b, word);
    for (; *candidates; candidates++) sg_offer(&b, *candidates);
    return b.best;
}
