/*
 * expr.h — the step language of a spec: lexer, parser, syntax tree (prefix ex_).
 *
 * Overview
 * --------
 * One statement per step entry, one expression per data transform or sample entry:
 *
 *     z = randn(batch, 100)                        assignment
 *     mu, logvar = split(encoder(x), 2)            tuple assignment (split, chunk)
 *     loss = bce(decoder(z), x, sum) + kl_normal(mu, logvar)
 *     update opt_D: loss_D                         an optimizer step on a loss
 *     G(randn(64, 100))                            a bare expression
 *
 * Expressions: numbers (64, 0.5, 2e-4), names, calls with positional then keyword
 * arguments (`leaky_relu(h, slope=0.2)`), + - * / and ** with the usual precedence
 * (** binds tightest and to the right, and -x**2 is -(x**2)), unary minus, parentheses.
 * A name is only a name here: `sum` in `bce(p, x, sum)` and `G` in `G(z)` mean what the
 * interpreter decides.
 *
 *     ex_stmt *s;
 *     ag_loc at;
 *     const char *text = yt_expr_text(node, &at);       // from aigc/yaml.h
 *     if (ex_parse_stmt(&arena, text, at, &s, &err) != AG_OK) ...
 *
 * Locations: `at` is the place of text[0]; a line break in the text starts a new line
 * at column 1, so a plain YAML scalar passed as written keeps exact columns. Every node
 * has its place: a number or name where it starts, a call at its name, a unary or binary
 * operation at its operator. Errors read "FILE:LINE:COL: expected ')' to close '(' at
 * 3:10, got ','" with the column of the offending token.
 */
#ifndef AIGC_EXPR_H
#define AIGC_EXPR_H

#include <stddef.h>

#include "aigc/arena.h"
#include "aigc/base.h"

/* Expressions nested deeper than this are refused, so that hostile text cannot overflow
 * the C stack of the recursive parser, nor of what walks the tree (the evaluator): both
 * the brackets and the tree's height are bounded. Calls take at most EX_MAX_ARGS. */
enum { EX_MAX_DEPTH = 64, EX_MAX_ARGS = 32 };

typedef enum ex_kind {
    EX_NUM,  /* num, is_int, text */
    EX_NAME, /* text */
    EX_CALL, /* text (the callee), args[nargs] */
    EX_NEG,  /* lhs */
    EX_BIN   /* op, lhs, rhs */
} ex_kind;

typedef enum ex_op { EX_ADD, EX_SUB, EX_MUL, EX_DIV, EX_POW } ex_op;

typedef struct ex_node ex_node;
typedef struct ex_arg {
    const char *key; /* NULL for a positional argument */
    ag_loc key_loc;
    ex_node *value;
} ex_arg;

struct ex_node {
    ex_kind kind;
    ag_loc loc;
    const char *text; /* a name, a callee, or a number as written */
    double num;
    int is_int;       /* a number written without '.' or exponent */
    ex_op op;
    ex_node *lhs, *rhs;
    int height;       /* of the subtree: 1 for a leaf, at most EX_MAX_DEPTH */
    ex_arg *args;     /* positional ones first */
    size_t nargs;
};

typedef enum ex_stmt_kind {
    EX_ASSIGN, /* names[n] = expr */
    EX_UPDATE, /* update names[0]: expr */
    EX_EVAL    /* expr */
} ex_stmt_kind;

typedef struct ex_stmt {
    ex_stmt_kind kind;
    ag_loc loc;           /* the statement's first token */
    const char **names;   /* assignment targets, or the optimizer */
    ag_loc *name_locs;
    size_t nnames;
    ex_node *expr;
    int every;            /* update OPT every K: runs on every K-th step; else 1 */
    ag_loc every_loc;
} ex_stmt;

int ex_parse_stmt(ar_arena *a, const char *text, ag_loc at, ex_stmt **out, ag_error *err);
int ex_parse_expr(ar_arena *a, const char *text, ag_loc at, ex_node **out, ag_error *err);
/* Whether text is a name the expressions can use: a letter or '_', then letters,
 * digits and '_'. */
int ex_is_name(const char *text);

/* The tree as an s-expression, for tests and debugging: `(= z (randn batch 100))`,
 * `(= (mu logvar) (split (encoder x) 2))`, `(update opt loss)`, `(neg x)`,
 * keyword arguments as `slope=0.2`. Truncated to fit; returns buf. */
char *ex_dump_expr(const ex_node *n, char *buf, size_t size);
char *ex_dump_stmt(const ex_stmt *s, char *buf, size_t size);

#endif
