/*
 * suggest.h — "did you mean" for unknown keys, layers, ops and names (prefix sg_).
 *
 * The distance is Damerau-Levenshtein in its optimal-string-alignment form (insert,
 * delete, substitute, swap two neighbours: each costs 1), on ASCII-lowercased text so
 * that `Adam` finds `adam`. A candidate is suggested only when it is close for its
 * length: at most (longer length + 2) / 3 edits, and fewer edits than the word has
 * characters, so `x` never suggests `y`. Among equals the first candidate wins, so
 * suggestions follow the caller's order.
 *
 * Candidates can come from a NULL-terminated list:
 *
 *     const char *s = sg_suggest("epoch", (const char *const[]){"epochs", "step", NULL});
 *
 * or from any table, one at a time:
 *
 *     sg_best b;  sg_init(&b, name);
 *     for (int i = 0; i < n_ops; i++) sg_offer(&b, ops[i].name);
 *     char hint[96];
 *     ag_errorf(err, loc, "unknown op '%s'%s", name, sg_hint(&b, hint, sizeof hint));
 */
#ifndef AIGC_SUGGEST_H
#define AIGC_SUGGEST_H

#include <stddef.h>

/* Words longer than this are compared with nothing (no suggestion). */
enum { SG_MAX_LEN = 64 };

typedef struct sg_best {
    const char *word;
    const char *best; /* NULL while nothing is close enough */
    int dist;
} sg_best;

void sg_init(sg_best *b, const char *word);
void sg_offer(sg_best *b, const char *candidate);
/* "; did you mean 'epochs'?" in buf, or "" when there is no suggestion. Returns buf. */
const char *sg_hint(const sg_best *b, char *buf, size_t size);

/* The closest of a NULL-terminated list, or NULL. */
const char *sg_suggest(const char *word, const char *const *candidates);

/* The edit distance itself (case-folded), or SG_MAX_LEN + 1 for longer words. */
int sg_distance(const char *a, const char *b);

#endif
