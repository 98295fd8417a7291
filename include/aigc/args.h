/*
 * args.h — one binder for the arguments of layers (`linear 256 bias=0`), of the step
 * language's builtins (`bce(x, 1, reduction=sum)`) and of initializers (prefix ab_).
 *
 * A callee describes its parameters in a table: name, default, range, whether a number
 * must be whole, and the words one takes instead of a number. A call's arguments come
 * by position, then by name; ab_place puts each in its parameter, ab_missing refuses a
 * call that left out a required one, ab_number checks a value against its parameter.
 *
 *     static const ab_param params[] = {{"out", 0, 1, 1 << 24, 1}, {"bias", 1, 0, 1}};
 *     ab_sig sig = {AB_LAYER, 2, 1, params};
 *     ab_state st = {.nargs = n};
 *     for (int k = 0; k < n; k++) {
 *         int at = ab_place(&sig, "linear", &st, key[k], loc[k], key_loc[k], &err);
 *         if (at < 0 || ab_number(&sig, "linear", at, word[k], num[k], loc[k], &v[at], &err)) ...
 *     }
 *     if (ab_missing(&sig, "linear", &st, layer_loc, &err)) ...
 */
#ifndef AIGC_ARGS_H
#define AIGC_ARGS_H

#include "aigc/base.h"

enum { AB_MAX_PARAMS = 6 };

typedef struct ab_param {
    const char *name;          /* "" ends the positional parameters: those after it are
                                * given by name only */
    double dflt;
    double lo, hi;             /* a number's range */
    int whole;                 /* a number must be a whole number (sizes, strides) */
    const char *const *words;  /* NULL-terminated words taken instead of a number, word j
                                * standing for j (lo and hi do not apply); NULL: none */
} ab_param;

/* How the callee is written, which the messages about missing or extra arguments
 * follow: `linear 256` or `bce(x, 1)`. */
typedef enum ab_form { AB_LAYER, AB_CALL } ab_form;

typedef struct ab_sig {
    ab_form form;
    int nparams, nrequired;    /* the first nrequired must be given */
    const ab_param *params;
    int variadic;              /* every positional argument fills the next parameter;
                                * none is given by name */
} ab_sig;

/* One call's binding so far; nargs is the number of arguments the call has. */
typedef struct ab_state {
    int nargs, npos;
    unsigned given;            /* bit k: parameter k has its argument */
} ab_state;

/* The parameter an argument fills (key NULL: the next positional one), or -1 with a
 * message: no such name (with "did you mean"), too many, or given twice. loc is the
 * argument's value, key_loc its name. */
int ab_place(const ab_sig *s, const char *callee, ab_state *st, const char *key, ag_loc loc,
             ag_loc key_loc, ag_error *err);
/* AG_ERR, with a message at loc (the call), when a required parameter has no argument. */
int ab_missing(const ab_sig *s, const char *callee, const ab_state *st, ag_loc loc, ag_error *err);
/* Checks the value of parameter at, a word (NULL for a number) or num, and stores it. */
int ab_number(const ab_sig *s, const char *callee, int at, const char *word, double num, ag_loc loc,
              double *out, ag_error *err);
/* Every parameter's default, into out[0 .. nparams-1]. */
void ab_defaults(const ab_sig *s, double *out);
/* The index of the parameter called name, or -1. */
int ab_index(const ab_sig *s, const char *name);
/* The word a value stands for at parameter at, which takes words. */
const char *ab_word(const ab_sig *s, int at, double v);

#endif
