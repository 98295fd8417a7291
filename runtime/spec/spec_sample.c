/* spec_sample.c — a spec's sample: sections, their inputs and loops, and the diffusion
 * schedule they run. */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/suggest.h"
#include "spec_impl.h"

/* loop: {var: t, from: 999, to: 0, by: -1, steps: [...]}: the reverse process of a
 * diffusion model, or pixel-by-pixel generation. */
static const sp_key loop_keys[] = {
    {.name = "var", .type = SP_STR, .flags = SP_REQUIRED, .offset = offsetof(sp_sample, loop_var)},
    {.name = "from", .type = SP_EXPR, .flags = SP_REQUIRED, .offset = offsetof(sp_sample, loop_from)},
    {.name = "to", .type = SP_EXPR, .flags = SP_REQUIRED, .offset = offsetof(sp_sample, loop_to)},
    {.name = "by", .type = SP_EXPR, .offset = offsetof(sp_sample, loop_by)},
    {.name = "steps", .type = SP_OWN},
};

static int load_loop(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    sp_sample *sm = dst;
    if (yt_want(n, YT_MAP, "loop", err) || sp_bind_impl(s, SP_KEYS(loop_keys), 0, n, "loop", sm, err)) return AG_ERR;
    sm->has_loop = 1;
    sm->loop_loc = n->loc;
    const yt_node *steps = yt_need(n, "steps", err);
    if (!steps || yt_want(steps, YT_SEQ, "steps", err)) return AG_ERR;
    sm->nloop_steps = (int)steps->n;
    sm->loop_steps = ar_alloc(&s->arena, (steps->n ? steps->n : 1) * sizeof *sm->loop_steps);
    for (size_t k = 0; k < steps->n; k++)
        if (sp_parse_stmt_impl(s, steps->items[k], &sm->loop_steps[k], err)) return AG_ERR;
    return AG_OK;
}

/* schedule: {kind: linear, steps: 1000, beta_start: 1e-4, beta_end: 0.02} or
 * {kind: cosine, steps: 1000, s: 0.008}. */
static const sp_key schedule_keys[] = {
    {.name = "kind", .type = SP_WORD, .words = (const char *const[]){"linear", "cosine", NULL},
     .words_msg = "schedule: 'kind' is linear or cosine, not '%s'", .offset = offsetof(sp_schedule, kind)},
    {.name = "steps", .type = SP_INT, .min = 1, .max = 100000, .dflt = 1000, .offset = offsetof(sp_schedule, steps)},
    {.name = "beta_start", .type = SP_FLOAT, .lo = 0, .hi = 1, .dflt = 1e-4,
     .offset = offsetof(sp_schedule, beta_start)},
    {.name = "beta_end", .type = SP_FLOAT, .lo = 0, .hi = 1, .dflt = 0.02, .offset = offsetof(sp_schedule, beta_end)},
    {.name = "s", .type = SP_FLOAT, .lo = 0, .hi = 1, .dflt = 0.008, .offset = offsetof(sp_schedule, s)},
};
static_assert(SP_SCHEDULE_LINEAR == 0 && SP_SCHEDULE_COSINE == 1 && sizeof(sp_schedule_kind) == sizeof(int),
              "a schedule kind is the index of its word");

int sp_load_schedule_impl(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    sp_schedule *sc = &s->schedule;
    sc->loc = n->loc;
    if (yt_want(n, YT_MAP, "schedule", err) || sp_bind_impl(s, SP_KEYS(schedule_keys), 0, n, "schedule", sc, err))
        return AG_ERR;
    if (!(sc->beta_start <= sc->beta_end) || sc->beta_end >= 1)
        return ag_errorf(err, n->loc, "schedule: need 0 <= beta_start <= beta_end < 1");
    s->has_schedule = 1;
    return AG_OK;
}

/* range: [low, high], low < high. */
static int get_range(const yt_node *range, double *lo, double *hi, ag_error *err)
{
    if (range->kind != YT_SEQ || range->n != 2)
        return ag_errorf(err, range->loc, "'range' must be a list [low, high], like [-1, 1]");
    if (yt_float(range->items[0], "range", -INFINITY, INFINITY, lo, err) ||
        yt_float(range->items[1], "range", -INFINITY, INFINITY, hi, err))
        return AG_ERR;
    if (!(*lo < *hi)) return ag_errorf(err, range->loc, "'range' must have low < high");
    return AG_OK;
}

/* A number input: NUMBER, or {number: NUMBER, range: [LO, HI]}, whose range holds the
 * default and every value the command line gives (a temperature of -1 would draw the
 * least likely bytes first, without a word). */
static int load_number_input(sp_input *in, const yt_node *v, ag_error *err)
{
    in->kind = SP_INPUT_NUMBER;
    in->lo = -INFINITY;
    in->hi = INFINITY;
    if (v->kind == YT_MAP) {
        const yt_node *range = yt_get(v, "range");
        if (range && get_range(range, &in->lo, &in->hi, err)) return AG_ERR;
        return yt_float(yt_get(v, "number"), in->name, in->lo, in->hi, &in->number, err);
    }
    if (v->kind != YT_SCALAR || yt_float(v, in->name, -INFINITY, INFINITY, &in->number, err))
        return ag_errorf(err, v->loc, "input '%s' is a number (its default), {number: N, range: [LO, HI]}, "
                         "{image: FILE} for an image, or {text: STRING} for text", in->name);
    return AG_OK;
}

/* An input's kinds exclude each other, and a number's default is read with its range. */
static const sp_key input_keys[] = {
    {.name = "image", .type = SP_OWN},
    {.name = "text", .type = SP_OWN},
    {.name = "number", .type = SP_OWN},
    {.name = "range", .type = SP_OWN},
};

/* inputs: {NAME: NUMBER, NAME: {number: NUMBER, range: [LO, HI]}, NAME: {image: FILE-or-~},
 * NAME: {text: STRING}}. */
static int load_inputs(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    sp_sample *sm = dst;
    static const char *const taken[] = {"n", "pixels", "test_x", "test_label", "tokens"};
    if (yt_want(n, YT_MAP, "inputs", err)) return AG_ERR;
    if (n->n > SP_MAX_SAMPLE_INPUTS)
        return ag_errorf(err, n->loc, "'inputs' has %zu entries; at most %d", n->n, SP_MAX_SAMPLE_INPUTS);
    sm->ninputs = (int)n->n;
    sm->inputs = ar_alloc(&s->arena, (n->n ? n->n : 1) * sizeof *sm->inputs);
    for (size_t k = 0; k < n->n; k++) {
        const yt_pair *pr = &n->pairs[k];
        sp_input *in = &sm->inputs[k];
        in->name = sp_key_of(pr);
        in->loc = pr->key->loc;
        if (!ex_is_name(in->name))
            return ag_errorf(err, in->loc, "input '%s': a name is a letter or '_', then letters, digits and '_'",
                             in->name);
        for (size_t j = 0; j < AG_COUNTOF(taken); j++)
            if (!strcmp(in->name, taken[j]))
                return ag_errorf(err, in->loc, "input '%s': the section already has '%s'; choose another name",
                                 in->name, in->name);
        const yt_node *v = pr->value;
        if (v->kind == YT_MAP) {
            if (sp_bind_impl(s, SP_KEYS(input_keys), 0, v, in->name, in, err)) return AG_ERR;
            const yt_node *txt = yt_get(v, "text"), *num = yt_get(v, "number");
            if (!!txt + !!num + !!yt_get(v, "image") > 1)
                return ag_errorf(err, v->loc, "input '%s': either 'image', 'text' or 'number', not two", in->name);
            if (yt_get(v, "range") && !num)
                return ag_errorf(err, yt_get(v, "range")->loc,
                                 "input '%s': 'range' goes with a number's default, like {number: 0.8, range: [0.01, 10]}",
                                 in->name);
            if (num) {
                if (load_number_input(in, v, err)) return AG_ERR;
                continue;
            }
            if (txt) {
                in->kind = SP_INPUT_TEXT;
                if (yt_str(txt, "text", &in->text, err)) return AG_ERR;
                continue;
            }
            const yt_node *img = yt_need(v, "image", err);
            if (!img) return AG_ERR;
            in->kind = SP_INPUT_IMAGE;
            /* ~ (or nothing): the user must give the file. */
            if (img->kind == YT_SCALAR && img->len && strcmp(img->text, "~") && strcmp(img->text, "null")) {
                if (yt_str(img, "image", &in->path, err)) return AG_ERR;
            } else if (img->kind != YT_SCALAR) {
                return ag_errorf(err, img->loc, "input '%s': 'image' is a PNG file, or ~ to require one", in->name);
            }
            continue;
        }
        if (load_number_input(in, v, err)) return AG_ERR;
    }
    return AG_OK;
}

/* steps: statements run before the section's result. */
static int load_section_steps(sp_spec *s, void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    sp_sample *sm = dst;
    if (yt_want(v, YT_SEQ, "steps", err)) return AG_ERR;
    sm->nsteps = (int)v->n;
    sm->steps = ar_alloc(&s->arena, (v->n ? v->n : 1) * sizeof *sm->steps);
    for (size_t k = 0; k < v->n; k++)
        if (sp_parse_stmt_impl(s, v->items[k], &sm->steps[k], err)) return AG_ERR;
    return AG_OK;
}

static int strip_check(void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    const sp_sample *sm = dst;
    if (v && !yt_get(map, "loop"))
        return ag_errorf(err, v->loc, "%s: 'strip' records the passes of a loop, and this section has none",
                         sm->name);
    if (v && yt_get(map, "text"))
        return ag_errorf(err, v->loc, "%s: 'strip' records images, and this section gives text", sm->name);
    if (v && yt_get(map, "features"))
        return ag_errorf(err, v->loc, "%s: 'strip' records images, and this section gives features", sm->name);
    return AG_OK;
}

/* A features section is written by aigc-run encode over whole splits, never drawn as
 * a grid: not after each epoch. */
static int load_features(sp_spec *s, sp_sample *sm, const yt_node *map, const yt_node *f, ag_error *err)
{
    const yt_node *other = yt_get(map, "image") ? yt_get(map, "image") : yt_get(map, "text");
    if (other)
        return ag_errorf(err, other->loc, "%s: a section gives one of 'image', 'text' and 'features', not two", sm->name);
    const yt_node *each = yt_get(map, "each_epoch");
    if (each && sm->each_epoch)
        return ag_errorf(err, each->loc, "%s: a features section is not drawn each epoch: aigc-run encode writes "
                         "it; remove 'each_epoch'", sm->name);
    sm->each_epoch = 0;
    /* The chunk's images and labels are the section's own names (inputs are read
     * before: pass 2). */
    for (int j = 0; j < sm->ninputs; j++)
        if (!strcmp(sm->inputs[j].name, "x") || !strcmp(sm->inputs[j].name, "label"))
            return ag_errorf(err, sm->inputs[j].loc, "input '%s': the section already has '%s'; choose another name",
                             sm->inputs[j].name, sm->inputs[j].name);
    return sp_parse_expr_impl(s, f, "features", &sm->features, err);
}

/* The section's result: an image expression, a text one, or features. */
static int load_result(sp_spec *s, void *dst, const yt_node *map, const yt_node *img, ag_error *err)
{
    sp_sample *sm = dst;
    const yt_node *txt = yt_get(map, "text"), *f = yt_get(map, "features");
    if (f) return load_features(s, sm, map, f, err);
    if (img && txt)
        return ag_errorf(err, txt->loc, "%s: a section gives 'image' or 'text', not both", sm->name);
    if (txt) return sp_parse_expr_impl(s, txt, "text", &sm->text, err);
    if (!(img = yt_need(map, "image", err)) || sp_parse_expr_impl(s, img, "image", &sm->image, err)) return AG_ERR;
    return AG_OK;
}

/* grid: ROWSxCOLS, for a section that gives images (one that gives text ignores it). */
static int grid_check(void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    sp_sample *sm = dst;
    const char *g;
    int used = 0;
    if (!v || yt_get(map, "text")) return AG_OK;
    if (yt_str(v, "grid", &g, err)) return AG_ERR;
    if (sscanf(g, "%dx%d%n", &sm->rows, &sm->cols, &used) != 2 || g[used] || sm->rows < 1 || sm->cols < 1 ||
        sm->rows > 1024 || sm->cols > 1024)
        return ag_errorf(err, v->loc, "'grid' must be ROWSxCOLS, like 8x8, got '%s'", g);
    return AG_OK;
}

/* range: the values mapped to black and white, for a section that gives images. */
static int load_image_range(sp_spec *s, void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    sp_sample *sm = dst;
    double lo, hi;
    if (yt_get(map, "text")) return AG_OK;
    if (get_range(v, &lo, &hi, err)) return AG_ERR;
    sm->has_range = 1;
    sm->lo = (float)lo;
    sm->hi = (float)hi;
    return AG_OK;
}

/* label: the class each image was asked for, which a generated data set records and
 * eval --quality compares with what the classifier sees; text has no classes. */
static int label_check(void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    const sp_sample *sm = dst;
    if (v && yt_get(map, "text"))
        return ag_errorf(err, v->loc, "%s: 'label' gives the class of each image, and this section gives text",
                         sm->name);
    return AG_OK;
}

static const sp_key strip_keys[] = {
    {.name = "every", .type = SP_INT, .flags = SP_REQUIRED, .min = 1, .max = 1000000,
     .offset = offsetof(sp_sample, strip_every)},
};

/* Offered for "did you mean" in this order, read in the order of the passes. */
static const sp_key section_keys[] = {
    {.name = "image", .type = SP_OWN, .flags = SP_ALWAYS, .pass = 6, .load = load_result},
    {.name = "label", .type = SP_EXPR, .pass = 6, .offset = offsetof(sp_sample, label), .check = label_check},
    {.name = "steps", .type = SP_OWN, .pass = 1, .load = load_section_steps},
    {.name = "loop", .type = SP_OWN, .pass = 4, .load = load_loop},
    {.name = "grid", .type = SP_FN, .pass = 7, .check = grid_check},
    {.name = "range", .type = SP_OWN, .pass = 8, .load = load_image_range},
    {.name = "count", .type = SP_INT, .min = 1, .max = 4096, .dflt = 64, .offset = offsetof(sp_sample, count)},
    {.name = "each_epoch", .type = SP_BOOL, .pass = 3, .dflt = 1, .offset = offsetof(sp_sample, each_epoch)},
    {.name = "inputs", .type = SP_OWN, .pass = 2, .load = load_inputs},
    {.name = "text", .type = SP_OWN},
    {.name = "features", .type = SP_OWN},
    {.name = "strip", .type = SP_MAP, .pass = 5, .sub = SP_KEYS(strip_keys), .check = strip_check},
};

/* One section: an image expression over n draws (and the test split's first n
 * images as test_x and test_label), optional statements before it, and the grid. */
static int load_section(sp_spec *s, const char *name, const yt_node *n, sp_sample *sm, ag_error *err)
{
    sm->name = name;
    sm->loc = n->loc;
    if (yt_want(n, YT_MAP, name, err)) return AG_ERR;
    return sp_bind_impl(s, SP_KEYS(section_keys), 0, n, name, sm, err);
}

/* `sample:` is one section (it has an image) or named sections. */
int sp_load_sample_impl(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    if (yt_want(n, YT_MAP, "sample", err)) return AG_ERR;
    if (yt_get(n, "image") || yt_get(n, "text") || yt_get(n, "features")) {
        s->nsamples = 1;
        s->samples = ar_alloc(&s->arena, sizeof *s->samples);
        return load_section(s, "sample", n, &s->samples[0], err);
    }
    if (n->n == 0) return ag_errorf(err, n->loc, "'sample' is empty: give an image, or named sections");
    s->nsamples = (int)n->n;
    s->samples = ar_alloc(&s->arena, n->n * sizeof *s->samples);
    for (size_t k = 0; k < n->n; k++)
        if (load_section(s, sp_key_of(&n->pairs[k]), n->pairs[k].value, &s->samples[k], err)) return AG_ERR;
    return AG_OK;
}

const sp_sample *sp_find_sample(const sp_spec *s, const char *name)
{
    for (int k = 0; k < s->nsamples; k++)
        if (strcmp(s->samples[k].name, name) == 0) return &s->samples[k];
    return NULL;
}

const char *sp_sample_hint(const sp_spec *s, const char *name, char *buf, size_t size)
{
    sg_best b;
    sg_init(&b, name);
    for (int k = 0; k < s->nsamples; k++) sg_offer(&b, s->samples[k].name);
    if (*sg_hint(&b, buf, size)) return buf;
    size_t used = (size_t)snprintf(buf, size, " (the spec's:");
    for (int k = 0; k < s->nsamples && used < size; k++)
        used += (size_t)snprintf(buf + used, size - used, "%s %s", k ? "," : "", s->samples[k].name);
    if (used < size) snprintf(buf + used, size - used, ")");
    return buf;
}

/* One --input NAME=VALUE into one declared input; where is the override's text. */
static int set_input(sp_spec *s, sp_input *in, const char *value, const char *where, ag_error *err)
{
    in->given = ar_strdup(&s->arena, where);
    if (in->kind == SP_INPUT_IMAGE) {
        if (!*value) return ag_errorf(err, (ag_loc){0}, "%s: '%s' is an image: give a PNG file", where, in->name);
        in->path = value;
        return AG_OK;
    }
    if (in->kind == SP_INPUT_TEXT) {
        in->text = value;
        return AG_OK;
    }
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(v))
        return ag_errorf(err, (ag_loc){0}, "%s: '%s' is a number, got '%s'", where, in->name, value);
    if (v < in->lo || v > in->hi)
        return ag_errorf(err, (ag_loc){0}, "%s: '%s' must be in [%g, %g] (the spec's range), got '%s'", where,
                         in->name, in->lo, in->hi, value);
    in->number = v;
    return AG_OK;
}

int sp_set_inputs(sp_spec *s, const char *section, const sp_set *sets, int nsets, ag_error *err)
{
    for (int k = 0; k < nsets; k++) {
        const char *text = sets[k].text, *eq = strchr(text, '=');
        char where[256];
        /* An option's value as typed; an empty one as the shell takes it. */
        const char *typed = !eq ? text : eq[1] ? eq + 1 : "''";
        if (sets[k].option)
            snprintf(where, sizeof where, "%s %s", sets[k].option, typed);
        else
            snprintf(where, sizeof where, "--input %s", text);
        if (!eq || eq == text) return ag_errorf(err, (ag_loc){0}, "%s: expected NAME=VALUE, like temperature=0.8", where);
        size_t len = (size_t)(eq - text);
        int hits = 0;
        sg_best b;
        sg_init(&b, ar_strndup(&s->arena, text, len));
        for (int j = 0; j < s->nsamples; j++) {
            sp_sample *sm = &s->samples[j];
            if (section && strcmp(sm->name, section)) continue;
            for (int i = 0; i < sm->ninputs; i++) {
                sg_offer(&b, sm->inputs[i].name);
                if (strlen(sm->inputs[i].name) != len || strncmp(sm->inputs[i].name, text, len)) continue;
                if (set_input(s, &sm->inputs[i], eq + 1, where, err)) return AG_ERR;
                hits++;
            }
        }
        if (!hits) {
            char hint[96];
            if (section)
                return ag_errorf(err, (ag_loc){0}, "%s: sample section '%s' has no input '%.*s'%s", where, section,
                                 (int)len, text, sg_hint(&b, hint, sizeof hint));
            if (sets[k].needs)
                return ag_errorf(err, (ag_loc){0}, "%s: no sample section has an input '%.*s' (%s)", where,
                                 (int)len, text, sets[k].needs);
            return ag_errorf(err, (ag_loc){0}, "%s: no sample section has an input '%.*s'%s", where, (int)len, text,
                             sg_hint(&b, hint, sizeof hint));
        }
    }
    return AG_OK;
}

