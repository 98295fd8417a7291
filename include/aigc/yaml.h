/*
 * yaml.h — a spec file as a tree of located nodes (prefix yt_).
 *
 * Overview
 * --------
 * libyaml parses; this module keeps what the spec reader needs and nothing else: a tree
 * of scalars, sequences and mappings, every node with its place in the file, all of it
 * in one arena. The typed getters turn a scalar into a value or into an error message
 * that names the key, the place, the range and the offending text.
 *
 *     ar_arena a;  ar_init(&a, 0);
 *     yt_doc doc;  ag_error err;
 *     if (yt_load_file(&doc, &a, "specs/gan.yaml", &err) != AG_OK) goto fail;
 *     static const char *const top[] = {"name", "seed", "data", "models", "train", NULL};
 *     if (yt_want(doc.root, YT_MAP, "spec", &err) ||
 *         yt_check_keys(doc.root, top, NULL, &err)) goto fail;
 *     const yt_node *train = yt_need(doc.root, "train", &err), *n;
 *     long epochs;
 *     if (!train || yt_want(train, YT_MAP, "train", &err) ||
 *         !(n = yt_need(train, "epochs", &err)) ||
 *         yt_int(n, "epochs", 1, 1000000, &epochs, &err)) goto fail;
 *     ...
 *   fail:
 *     yt_annotate(&err, &doc);           // adds the offending line and a caret
 *     fprintf(stderr, "%s\n", err.msg);  // specs/gan.yaml:14:9: 'epochs' must be ...
 *     ar_free(&a);
 *
 * What is refused
 * ---------------
 * Malformed YAML (libyaml's own words and place), a mapping key given twice, a key that
 * is not a scalar, nesting deeper than YT_MAX_DEPTH, a file larger than YT_MAX_BYTES or
 * with more than YT_MAX_NODES values, more than one document, an empty
 * file, explicit tags, and anchors and aliases. Aliases are refused rather than resolved
 * because a shared node has two places (an error in it could point at only one of them)
 * and because `--set a.b=1` on a shared node would silently change every use of it; a
 * spec is short enough to write each value out.
 */
#ifndef AIGC_YAML_H
#define AIGC_YAML_H

#include <stddef.h>

#include "aigc/arena.h"
#include "aigc/base.h"

/* Limits that keep hostile input from taking the machine: a real spec is a few kB and
 * a few hundred values. The file's size is checked before it is read. */
enum { YT_MAX_DEPTH = 64, YT_MAX_NODES = 100000 };
#define YT_MAX_BYTES (16u << 20)

typedef enum yt_kind { YT_SCALAR, YT_SEQ, YT_MAP } yt_kind;

typedef struct yt_node yt_node;
typedef struct yt_pair {
    yt_node *key; /* always a scalar */
    yt_node *value;
} yt_pair;

struct yt_node {
    yt_kind kind;
    ag_loc loc; /* where the node starts: a scalar's first character or quote, a
                 * flow collection's bracket, a block mapping's first key */
    /* YT_SCALAR */
    const char *text; /* the value, NUL-terminated (len excludes the NUL) */
    size_t len;
    int quoted;       /* not plain ('..', "..", | or >): a quoted "10" is a string */
    const char *raw;  /* plain scalars: the text as written, line breaks and
                       * indentation kept (== text on one line); NULL otherwise, or
                       * when the file cannot be mapped back (UTF-16 input) */
    int text_col;     /* the column of text's first character when text is exactly what
                       * is written on one line (plain, or between quotes without
                       * escapes), so that byte k of it is at column text_col + k; else 0 */
    int comma_cut;    /* plain, and a ',' follows it: a value in a flow collection, whose
                       * text may go on in the next item ([z = randn(batch, 100)]) */
    /* YT_SEQ: items[n]; YT_MAP: pairs[n], in file order */
    size_t n;
    yt_node **items;
    yt_pair *pairs;
};

typedef struct yt_doc yt_doc;
struct yt_doc {
    yt_node *root;    /* NULL until a load succeeds */
    const char *file; /* the name used in locations */
    const char *src;  /* the whole text, kept for yt_annotate */
    size_t src_len;
    const yt_doc *next; /* documents spliced into this one (a --set's list or mapping),
                         * which yt_annotate consults too */
};

/* Parse one YAML document into a tree allocated from `a`. doc->file and doc->src are
 * set before parsing starts, so yt_annotate works on a failed load too. */
int yt_load_file(yt_doc *doc, ar_arena *a, const char *path, ag_error *err);
/* The same for text in memory; `file` is the name used in locations. */
int yt_load_string(yt_doc *doc, ar_arena *a, const char *file, const char *text,
                   size_t len, ag_error *err);

/* The value of `key` in a mapping, or NULL. */
const yt_node *yt_get(const yt_node *map, const char *key);
/* The same, but a missing key is an error at the mapping: "missing key 'epochs'". */
const yt_node *yt_need(const yt_node *map, const char *key, ag_error *err);

/* "'train' must be a mapping, got a sequence". `name` is what the user calls the
 * value (usually its key); it is quoted in every message below. */
int yt_want(const yt_node *n, yt_kind kind, const char *name, ag_error *err);

/* Typed getters. Numbers and booleans must be plain scalars. The message states the
 * accepted range: "'epochs' must be an integer in [1, 1000], got '10.5'"; a bound at
 * LONG_MIN/LONG_MAX (or -INFINITY/INFINITY) is left out of it. */
int yt_int(const yt_node *n, const char *name, long min, long max, long *out,
           ag_error *err);
/* Decimal notation only (2e-4, .5, 1.0); never nan; inf or .inf only when the range
 * reaches it. */
int yt_float(const yt_node *n, const char *name, double min, double max, double *out,
             ag_error *err);
/* true/false, any capitalization of those two words; yes/no/on/off are refused. */
int yt_bool(const yt_node *n, const char *name, int *out, ag_error *err);
/* Any scalar except an empty plain one (which YAML reads as null). */
int yt_str(const yt_node *n, const char *name, const char **out, ag_error *err);

/* Strict schema: every key of `map` must be in the NULL-terminated `allowed` list.
 * "unknown key 'epoch' in 'train'; did you mean 'epochs'?" — `where` names the
 * mapping in the message and may be NULL. */
int yt_check_keys(const yt_node *map, const char *const *allowed, const char *where,
                  ag_error *err);

/* The text an expression parser should read for a scalar, and the place of its first
 * character. A plain scalar is given as written, line breaks and indentation kept, so
 * that a parser that follows them gets every column right even in a multi-line value;
 * a quoted scalar is given by value, one column in from its quote (exact unless it has
 * escapes or line breaks); a block scalar (| or >) by value at its indicator. */
const char *yt_expr_text(const yt_node *n, ag_loc *at);

/* If err->msg starts with "FILE:LINE:COL: " for doc's file (or a spliced document's),
 * append the source line and a caret under the column:
 *     specs/gan.yaml:12:9: 'lr' must be a number >= 0, got '2e-4x'
 *       12 |     lr: 2e-4x
 *          |         ^
 * Messages about other files, or without a place, are left as they are. */
void yt_annotate(ag_error *err, const yt_doc *doc);

#endif
