/* args.c — the argument binder of layers, builtins and initializers. */
#include "aigc/args.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aigc/suggest.h"

int ab_index(const ab_sig *s, const char *name)
{
    for (int k = 0; k < s->nparams; k++)
        if (s->params[k].name[0] && strcmp(s->params[k].name, name) == 0) return k;
    return -1;
}

void ab_defaults(const ab_sig *s, double *out)
{
    for (int k = 0; k < s->nparams; k++) out[k] = s->params[k].dflt;
}

const char *ab_word(const ab_sig *s, int at, double v) { return s->params[at].words[(int)v]; }

int ab_place(const ab_sig *s, const char *callee, ab_state *st, const char *key, ag_loc loc,
             ag_loc key_loc, ag_error *err)
{
    int at;
    if (!key) {
        at = st->npos++;
        if (s->form == AB_CALL && (at >= s->nparams || !s->params[at].name[0]))
            return ag_errorf(err, loc, "%s takes at most %d positional argument%s", callee, at, at == 1 ? "" : "s"),
                   -1;
    } else {
        at = s->variadic ? -1 : ab_index(s, key);
        if (at < 0) {
            sg_best b;
            sg_init(&b, key);
            for (int j = 0; j < s->nparams && !s->variadic; j++) sg_offer(&b, s->params[j].name);
            char hint[96];
            return ag_errorf(err, key_loc, "%s has no argument '%s'%s", callee, key, sg_hint(&b, hint, sizeof hint)),
                   -1;
        }
    }
    if (at >= s->nparams)
        return ag_errorf(err, loc, "%s takes %s%d argument%s, got %d", callee,
                         s->nparams > s->nrequired ? "at most " : "", s->nparams, s->nparams == 1 ? "" : "s",
                         st->nargs),
               -1;
    if (st->given >> at & 1)
        return ag_errorf(err, s->form == AB_LAYER ? loc : key_loc, "%s: '%s' given twice", callee,
                         s->params[at].name),
               -1;
    st->given |= 1u << at;
    return at;
}

int ab_missing(const ab_sig *s, const char *callee, const ab_state *st, ag_loc loc, ag_error *err)
{
    for (int k = 0; k < s->nrequired; k++) {
        if (st->given >> k & 1) continue;
        const ab_param *p = s->params;
        if (s->form == AB_LAYER)
            return ag_errorf(err, loc, "%s needs its '%s', like '%s 256'", callee, p[k].name, callee);
        return ag_errorf(err, loc, "%s needs %d argument%s (%s%s%s)", callee, s->nrequired,
                         s->nrequired == 1 ? "" : "s", p[0].name, s->nrequired > 1 ? ", " : "",
                         s->nrequired > 1 ? p[1].name : "");
    }
    return AG_OK;
}

/* "'order' must be natural, reversed or random, got 'randon'; did you mean 'random'?" */
static int word_error(const char *callee, const ab_param *p, const char *word, double num, ag_loc loc,
                      ag_error *err)
{
    const char *const *w = p->words;
    char list[160] = "", got[64], hint[96] = "";
    size_t len = 0;
    for (int j = 0; w[j] && len < sizeof list; j++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j == 0 ? "" : w[j + 1] ? ", " : " or ", w[j]);
    if (word) {
        sg_best b;
        sg_init(&b, word);
        for (int j = 0; w[j]; j++) sg_offer(&b, w[j]);
        sg_hint(&b, hint, sizeof hint);
        snprintf(got, sizeof got, "'%s'", word);
    } else {
        snprintf(got, sizeof got, "%g", num);
    }
    return ag_errorf(err, loc, "%s: '%s' must be %s, got %s%s", callee, p->name, list, got, hint);
}

int ab_number(const ab_sig *s, const char *callee, int at, const char *word, double num, ag_loc loc,
              double *out, ag_error *err)
{
    const ab_param *p = &s->params[at];
    if (p->words) {
        for (int j = 0; word && p->words[j]; j++)
            if (strcmp(p->words[j], word) == 0) return *out = j, AG_OK;
        return word_error(callee, p, word, num, loc, err);
    }
    if (word) return ag_errorf(err, loc, "%s: '%s' must be a number, got '%s'", callee, p->name, word);
    if (!(num >= p->lo && num <= p->hi))
        return ag_errorf(err, loc, "%s: '%s' must be in [%.15g, %.15g], got %.15g", callee, p->name, p->lo, p->hi,
                         num);
    if (p->whole && num != floor(num))
        return ag_errorf(err, loc, "%s: '%s' must be a whole number, got %g", callee, p->name, num);
    *out = num;
    return AG_OK;
}
