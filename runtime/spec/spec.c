/* spec.c — a spec's YAML checked section by section into an sp_spec. */
#include "aigc/spec.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/suggest.h"
#include "spec_impl.h"

/* ------------------------------------------------------------- overrides -- */

static yt_node *scalar_node(ar_arena *a, const char *text, ag_loc loc)
{
    yt_node *n = ar_alloc(a, sizeof *n);
    n->kind = YT_SCALAR;
    n->loc = loc;
    n->text = ar_strdup(a, text);
    n->len = strlen(text);
    n->raw = n->text;
    return n;
}

/* A --set value that opens with '[' or '{': parsed as YAML flow, as a document of its
 * own named after the whole override, `shown` ("--set KEY=VALUE"), whose value starts
 * at byte `at`. Its text is parsed behind that many spaces, so that its columns are
 * those of the override as typed, which is the line yt_annotate then shows. */
static yt_node *flow_value(sp_spec *s, const char *shown, size_t at, ag_error *err)
{
    size_t len = strlen(shown);
    char *shifted = ar_alloc(&s->arena, len + 1);
    memset(shifted, ' ', at);
    memcpy(shifted + at, shown + at, len - at + 1);
    yt_doc *doc = ar_alloc(&s->arena, sizeof *doc);
    int rc = yt_load_string(doc, &s->arena, shown, shifted, len, err);
    doc->src = shown;
    doc->next = s->doc.next;
    s->doc.next = doc;
    return rc == AG_OK ? doc->root : NULL;
}

/* "train.epochs=5": walks the mappings along the dotted path, creating the missing
 * ones, and puts the value there: a plain scalar, placed at the override itself, or a
 * flow list or mapping ("models.G.layers=[linear 128, relu]"). A number in the path
 * indexes a list ("train.step.0=..."). */
static int apply_set(sp_spec *s, const char *text, ag_error *err)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text)
        return ag_errorf(err, (ag_loc){0}, "--set %s: expected KEY=VALUE, like train.epochs=5", text);
    char *path = ar_strndup(&s->arena, text, (size_t)(eq - text));
    /* No line: messages about the value read "--set train.epochs=0: ...". */
    size_t len = strlen(text) + sizeof "--set ";
    char *file = ar_alloc(&s->arena, len);
    snprintf(file, len, "--set %s", text);
    ag_loc loc = {file, 0, 0};
    yt_node *value;
    if (eq[1] == '[' || eq[1] == '{') {
        /* The value's byte in file: "--set ", the key, '=' (sizeof counts the last). */
        if (!(value = flow_value(s, file, sizeof "--set " + (size_t)(eq - text), err))) return AG_ERR;
    } else {
        value = scalar_node(&s->arena, eq + 1, loc);
    }
    yt_node *at = s->doc.root;
    for (char *key = path, *dot;; key = dot + 1) {
        dot = strchr(key, '.');
        if (dot) *dot = 0;
        if (!*key) return ag_errorf(err, (ag_loc){0}, "--set %s: empty key in the path", text);
        yt_node **slot;
        if (at->kind == YT_SEQ) {
            char *end;
            errno = 0;
            unsigned long k = strtoul(key, &end, 10);
            if (*end || *key < '0' || *key > '9' || errno || k >= at->n)
                return ag_errorf(err, (ag_loc){0}, "--set %s: '%s' in a list of %zu: index it by 0 to %zu", text,
                                 key, at->n, at->n ? at->n - 1 : 0);
            slot = &at->items[k];
        } else if (at->kind == YT_MAP) {
            yt_pair *hit = NULL;
            for (size_t k = 0; k < at->n; k++)
                if (strcmp(at->pairs[k].key->text, key) == 0) hit = &at->pairs[k];
            if (!hit) {
                yt_pair *pairs = ar_alloc(&s->arena, (at->n + 1) * sizeof *pairs);
                if (at->n) memcpy(pairs, at->pairs, at->n * sizeof *pairs);
                at->pairs = pairs;
                hit = &pairs[at->n++];
                hit->key = scalar_node(&s->arena, key, loc);
                if (dot) {
                    hit->value = ar_alloc(&s->arena, sizeof(yt_node));
                    hit->value->kind = YT_MAP;
                    hit->value->loc = loc;
                }
            }
            slot = &hit->value;
        } else {
            return ag_errorf(err, (ag_loc){0}, "--set %s: '%s' is not inside a mapping or a list", text, key);
        }
        if (!dot) {
            *slot = value;
            return AG_OK;
        }
        at = *slot;
    }
}

/* ---------------------------------------------------------------- helpers -- */


/* An expression that ended too soon where a flow collection's comma cut it: says so. */
static int comma_hint(const yt_node *n, int rc, ag_error *err)
{
    if (rc && n->comma_cut && strstr(err->msg, "got end of text"))
        ag_error_addf(err, " (in a flow [list] or {mapping} a comma ends the value: quote it, as in "
                           "'z = randn(batch, 100)')");
    return rc;
}

int sp_parse_expr_impl(sp_spec *s, const yt_node *n, const char *what, ex_node **out, ag_error *err)
{
    const char *str;
    if (yt_str(n, what, &str, err)) return AG_ERR;
    ag_loc at;
    const char *text = yt_expr_text(n, &at);
    return comma_hint(n, ex_parse_expr(&s->arena, text, at, out, err), err);
}

/* A per-sample shape: 784 or [1, 28, 28]. */
static int parse_shape(const yt_node *n, const char *what, ag_shape *out, ag_error *err)
{
    long v;
    if (n->kind == YT_SCALAR) {
        if (yt_int(n, what, 1, 1L << 24, &v, err)) return AG_ERR;
        *out = ag_shape1((int)v);
        return AG_OK;
    }
    /* [] is one number per sample, like a diffusion timestep. */
    if (n->kind != YT_SEQ || n->n > AG_MAX_DIMS - 1)
        return ag_errorf(err, n->loc, "'%s' must be a size or a list of up to %d sizes", what,
                         AG_MAX_DIMS - 1);
    out->ndim = (int)n->n;
    int64_t values = 1;
    for (size_t k = 0; k < n->n; k++) {
        if (yt_int(n->items[k], what, 1, 1L << 24, &v, err)) return AG_ERR;
        out->d[k] = (int)v;
        /* The same bound for the whole sample as for one size: every product of
         * sizes later (numel, batch times sample) then stays far inside int64_t. */
        if ((values *= v) > 1L << 24)
            return ag_errorf(err, n->loc, "'%s' must hold at most %ld values per sample", what,
                             1L << 24);
    }
    return AG_OK;
}

/* ------------------------------------------------------------------- keys -- */

static int applies(const sp_key *k, unsigned data)
{
    return !(k->flags & (SP_IMAGES | SP_TEXT | SP_FEATURES)) || (k->flags & data);
}

static int bind_default(sp_spec *s, const sp_key *k, const yt_node *map, void *dst, ag_error *err)
{
    void *at = (char *)dst + k->offset;
    switch (k->type) {
    case SP_INT: *(int *)at = (int)k->dflt; break;
    case SP_U64: *(uint64_t *)at = (uint64_t)k->dflt; break;
    case SP_FLOAT: *(double *)at = k->dflt; break;
    case SP_BOOL:
    case SP_WORD: *(int *)at = (int)k->dflt; break;
    case SP_STR: *(const char **)at = k->dflt_text; break;
    case SP_EXPR:
        if (k->dflt_text) return ex_parse_expr(&s->arena, k->dflt_text, map->loc, (ex_node **)at, err);
        break;
    case SP_MAP:
        for (int j = 0; j < k->nsub; j++)
            if (!(k->sub[j].flags & SP_REQUIRED) && bind_default(s, &k->sub[j], map, dst, err)) return AG_ERR;
        break;
    case SP_OWN:
    case SP_FN: break;
    }
    return AG_OK;
}

static int bind_value(sp_spec *s, const sp_key *k, const yt_node *v, unsigned data, void *dst, void *at,
                      ag_error *err)
{
    long l;
    switch (k->type) {
    case SP_INT:
        if (yt_int(v, k->name, k->min, k->max, &l, err)) return AG_ERR;
        *(int *)at = (int)l;
        return AG_OK;
    case SP_U64:
        if (yt_int(v, k->name, k->min, k->max, &l, err)) return AG_ERR;
        *(uint64_t *)at = (uint64_t)l;
        return AG_OK;
    case SP_FLOAT: return yt_float(v, k->name, k->lo, k->hi, (double *)at, err);
    case SP_BOOL: return yt_bool(v, k->name, (int *)at, err);
    case SP_STR: return yt_str(v, k->name, (const char **)at, err);
    case SP_WORD: {
        const char *word;
        if (yt_str(v, k->name, &word, err)) return AG_ERR;
        for (int j = 0; k->words[j]; j++)
            if (!strcmp(word, k->words[j])) return *(int *)at = j, AG_OK;
        return ag_errorf(err, v->loc, k->words_msg, word);
    }
    case SP_EXPR: return sp_parse_expr_impl(s, v, k->name, (ex_node **)at, err);
    case SP_MAP:
        if (yt_want(v, YT_MAP, k->name, err)) return AG_ERR;
        return sp_bind_impl(s, k->sub, k->nsub, data, v, k->name, dst, err);
    case SP_OWN:
    case SP_FN: return AG_OK;
    }
    return AG_OK;
}

int sp_bind_impl(sp_spec *s, const sp_key *keys, int n, unsigned data, const yt_node *map, const char *where,
                 void *dst, ag_error *err)
{
    const char *allowed[32];
    int na = 0;
    for (int k = 0; k < n; k++) {
        AG_ASSERT(na < (int)AG_COUNTOF(allowed) - 1);
        if (applies(&keys[k], data)) allowed[na++] = keys[k].name;
    }
    allowed[na] = NULL;
    if (yt_check_keys(map, allowed, where, err)) return AG_ERR;
    for (int pass = 0, more = 1; more; pass++) {
        more = 0;
        for (int j = 0; j < n; j++) {
            const sp_key *k = &keys[j];
            more |= k->pass > pass;
            if (k->pass != pass || !applies(k, data) || (k->type == SP_OWN && !k->load)) continue;
            const yt_node *v = yt_get(map, k->name);
            if (!v && (k->flags & SP_REQUIRED)) {
                yt_need(map, k->name, err);
                return AG_ERR;
            }
            if (k->type == SP_OWN) {
                if ((v || (k->flags & SP_ALWAYS)) && k->load(s, dst, map, v, err)) return AG_ERR;
                continue;
            }
            if (k->flags & SP_HAS_LOC) *(ag_loc *)((char *)dst + k->loc_offset) = v ? v->loc : map->loc;
            if (v && k->allow && k->allow(dst, map, v, err)) return AG_ERR;
            void *at = (char *)dst + k->offset;
            if (v ? bind_value(s, k, v, data, dst, at, err) : bind_default(s, k, map, dst, err)) return AG_ERR;
            if (k->check && k->check(dst, map, v, err)) return AG_ERR;
        }
    }
    return AG_OK;
}

/* ------------------------------------------------------------------- data -- */

typedef struct sp_dataset_info {
    const char *name;
    const char *default_path; /* NULL: the spec must give one */
    sp_data_kind kind;
    unsigned keys; /* the flag of the data keys that apply to it */
} sp_dataset_info;

static const sp_dataset_info datasets[] = {
    {"mnist", "data/mnist", SP_DATA_IMAGES, SP_IMAGES},
    {"fashion-mnist", "/usr/share/datasets/fashion-mnist", SP_DATA_IMAGES, SP_IMAGES},
    {"text", NULL, SP_DATA_TEXT, SP_TEXT},
    {"features", NULL, SP_DATA_FEATURES, SP_FEATURES},
};

static const sp_dataset_info *dataset_info(const char *name)
{
    for (size_t k = 0; k < AG_COUNTOF(datasets); k++)
        if (strcmp(datasets[k].name, name) == 0) return &datasets[k];
    return NULL;
}

/* The dataset's own directory when no path is given; another data set's own directory
 * is refused: a dataset changed (by --set, often) without its path, which would train
 * on the other data under this one's name. */
static int data_path_check(void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    sp_data *d = dst;
    const sp_dataset_info *info = dataset_info(d->dataset);
    const yt_node *ds = yt_get(map, "dataset");
    if (!v) {
        d->path_loc = ds->loc;
        if (!info->default_path)
            return ag_errorf(err, map->loc, "data: a %s dataset needs a 'path' (a file, or a directory of files)",
                             d->dataset);
        d->path = info->default_path;
    }
    for (size_t k = 0; k < AG_COUNTOF(datasets); k++)
        if (&datasets[k] != info && datasets[k].default_path && !strcmp(d->path, datasets[k].default_path))
        {
            char dflt[300] = "";
            if (info->default_path) snprintf(dflt, sizeof dflt, " (by default %s)", info->default_path);
            return ag_errorf(err, ds->loc, "dataset '%s' with the path %s, which is %s's: give its own data.path%s",
                             d->dataset, d->path, datasets[k].name, dflt);
        }
    return AG_OK;
}

/* The test split's directory: path's unless given, so that a model trained on generated
 * images (sample --format idx) is tested on the real ones. */
static int test_path_check(void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    sp_data *d = dst;
    if (!v) {
        d->test_path = d->path;
        d->test_path_loc = d->path_loc;
    }
    return AG_OK;
}

static const sp_key data_keys[] = {
    {.name = "dataset", .type = SP_OWN},
    {.name = "path", .type = SP_STR, .flags = SP_HAS_LOC, .offset = offsetof(sp_data, path),
     .loc_offset = offsetof(sp_data, path_loc), .check = data_path_check},
    {.name = "test_path", .type = SP_STR, .flags = SP_HAS_LOC | SP_IMAGES | SP_FEATURES,
     .offset = offsetof(sp_data, test_path), .loc_offset = offsetof(sp_data, test_path_loc),
     .check = test_path_check},
    {.name = "batch", .type = SP_INT, .flags = SP_HAS_LOC, .min = 1, .max = 65536, .dflt = 64,
     .offset = offsetof(sp_data, batch), .loc_offset = offsetof(sp_data, batch_loc)},
    {.name = "shuffle", .type = SP_BOOL, .dflt = 1, .offset = offsetof(sp_data, shuffle)},
    {.name = "drop_last", .type = SP_BOOL, .dflt = 0, .offset = offsetof(sp_data, drop_last)},
    {.name = "context", .type = SP_INT, .flags = SP_TEXT, .min = 1, .max = 4096, .dflt = 64,
     .offset = offsetof(sp_data, context)},
    {.name = "test", .type = SP_FLOAT, .flags = SP_TEXT, .lo = 0, .hi = 0.5, .dflt = 0.1,
     .offset = offsetof(sp_data, test_fraction)},
    {.name = "x", .type = SP_EXPR, .flags = SP_IMAGES, .dflt_text = "flatten(pixels / 255)",
     .offset = offsetof(sp_data, x)},
    {.name = "x", .type = SP_EXPR, .flags = SP_TEXT, .dflt_text = "tokens", .offset = offsetof(sp_data, x)},
    {.name = "x", .type = SP_EXPR, .flags = SP_FEATURES, .dflt_text = "features", .offset = offsetof(sp_data, x)},
};

static int load_data(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    if (yt_want(n, YT_MAP, "data", err)) return AG_ERR;
    sp_data *d = &s->data;
    d->loc = n->loc;
    const yt_node *ds = yt_need(n, "dataset", err);
    if (!ds || yt_str(ds, "dataset", &d->dataset, err)) return AG_ERR;
    const sp_dataset_info *info = dataset_info(d->dataset);
    if (!info) {
        sg_best best;
        sg_init(&best, d->dataset);
        for (size_t k = 0; k < AG_COUNTOF(datasets); k++) sg_offer(&best, datasets[k].name);
        char hint[96];
        return ag_errorf(err, ds->loc, "unknown dataset '%s'%s (known: mnist, fashion-mnist, text, features)",
                         d->dataset, sg_hint(&best, hint, sizeof hint));
    }
    d->kind = info->kind;
    return sp_bind_impl(s, SP_KEYS(data_keys), info->keys, n, "data", d, err);
}

/* ----------------------------------------------------------------- models -- */

/* "linear 256", "leaky_relu 0.2", "dropout p=0.3". */
static int parse_layer(sp_spec *s, const yt_node *n, sp_layer *L, ag_error *err)
{
    const char *text;
    if (yt_str(n, "layer", &text, err)) return AG_ERR;
    L->loc = n->loc;
    const char *p = text;
    int col = 0;
    for (int w = 0;; w++) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        char *word = ar_strndup(&s->arena, start, (size_t)(p - start));
        /* A word's own column where the text is as written; else the layer's. */
        ag_loc wl = n->loc;
        col = (int)(start - text);
        if (n->text_col) wl.col = n->text_col + col;
        if (w == 0) {
            L->kind = word;
            continue;
        }
        if (L->nargs == SP_MAX_LAYER_ARGS)
            return ag_errorf(err, wl, "layer '%s' takes at most %d arguments", L->kind,
                             SP_MAX_LAYER_ARGS);
        sp_arg *a = &L->args[L->nargs];
        a->loc = a->key_loc = wl;
        char *eq = strchr(word, '=');
        const char *value = word;
        if (eq) {
            *eq = 0;
            a->key = word;
            value = eq + 1;
            if (n->text_col) a->loc.col += (int)(value - word);
        } else if (L->nargs && L->args[L->nargs - 1].key) {
            return ag_errorf(err, wl, "a positional argument cannot follow 'key=value' ones");
        }
        /* Not a number: a word, which the layer's table accepts or refuses. */
        char *end;
        errno = 0;
        a->num = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(a->num)) {
            a->word = value;
            a->num = 0;
        }
        L->nargs++;
    }
    if (!L->kind) return ag_errorf(err, n->loc, "empty layer");
    return AG_OK;
}

static int ema_warmup_allow(const void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    if (yt_get(map, "ema")) return AG_OK;
    return ag_errorf(err, v->loc, "'ema_warmup' needs 'ema', the decay, on the same model");
}

static const sp_key model_keys[] = {
    {.name = "in", .type = SP_OWN},
    {.name = "layers", .type = SP_OWN},
    {.name = "nodes", .type = SP_OWN},
    {.name = "outputs", .type = SP_OWN},
    {.name = "ema", .type = SP_FLOAT, .lo = 0, .hi = 1, .offset = offsetof(sp_model, ema_decay)},
    {.name = "ema_warmup", .type = SP_BOOL, .offset = offsetof(sp_model, ema_warmup), .allow = ema_warmup_allow},
};

static int load_model(sp_spec *s, const yt_pair *pair, sp_model *m, ag_error *err)
{
    const yt_node *n = pair->value;
    m->name = sp_key_of(pair);
    m->loc = pair->key->loc;
    if (yt_want(n, YT_MAP, m->name, err) || sp_bind_impl(s, SP_KEYS(model_keys), 0, n, m->name, m, err)) return AG_ERR;
    m->has_ema = yt_get(n, "ema") != NULL;
    const yt_node *in = yt_need(n, "in", err);
    if (!in) return AG_ERR;
    if (in->kind == YT_MAP) {
        if (in->n < 1 || in->n > SP_MAX_INPUTS)
            return ag_errorf(err, in->loc, "a model takes 1 to %d inputs", SP_MAX_INPUTS);
        m->ninputs = (int)in->n;
        for (size_t k = 0; k < in->n; k++) {
            m->input_names[k] = sp_key_of(&in->pairs[k]);
            if (parse_shape(in->pairs[k].value, m->input_names[k], &m->inputs[k], err))
                return AG_ERR;
        }
    } else {
        m->ninputs = 1;
        m->input_names[0] = "x";
        if (parse_shape(in, "in", &m->inputs[0], err)) return AG_ERR;
    }

    const yt_node *layers = yt_get(n, "layers"), *nodes = yt_get(n, "nodes");
    if (!!layers == !!nodes)
        return ag_errorf(err, m->loc, "model '%s' needs either 'layers' (a stack) or 'nodes' (a graph)",
                         m->name);
    if (layers) {
        if (yt_get(n, "outputs"))
            return ag_errorf(err, yt_get(n, "outputs")->loc, "'outputs' belongs to a graph model (with 'nodes'); a stack has one output");
        if (m->ninputs != 1)
            return ag_errorf(err, in->loc, "a stack of layers takes one input; use 'nodes' for several");
        if (yt_want(layers, YT_SEQ, "layers", err)) return AG_ERR;
        if (layers->n == 0) return ag_errorf(err, layers->loc, "'layers' is empty");
        m->nlayers = (int)layers->n;
        m->layers = ar_alloc(&s->arena, layers->n * sizeof *m->layers);
        for (size_t k = 0; k < layers->n; k++)
            if (parse_layer(s, layers->items[k], &m->layers[k], err)) return AG_ERR;
        return AG_OK;
    }
    if (yt_want(nodes, YT_MAP, "nodes", err)) return AG_ERR;
    if (nodes->n == 0) return ag_errorf(err, nodes->loc, "'nodes' is empty");
    m->nnodes = (int)nodes->n;
    m->nodes = ar_alloc(&s->arena, nodes->n * sizeof *m->nodes);
    for (size_t k = 0; k < nodes->n; k++) {
        sp_gnode *gn = &m->nodes[k];
        gn->name = sp_key_of(&nodes->pairs[k]);
        gn->loc = nodes->pairs[k].key->loc;
        if (sp_parse_expr_impl(s, nodes->pairs[k].value, gn->name, &gn->expr, err)) return AG_ERR;
    }
    const yt_node *outs = yt_get(n, "outputs");
    if (!outs) {
        /* The last node is the output, as the last layer of a stack is. */
        m->noutputs = 1;
        m->outputs = ar_alloc(&s->arena, sizeof *m->outputs);
        m->output_locs = ar_alloc(&s->arena, sizeof *m->output_locs);
        m->outputs[0] = m->nodes[m->nnodes - 1].name;
        m->output_locs[0] = m->nodes[m->nnodes - 1].loc;
        return AG_OK;
    }
    size_t no = outs->kind == YT_SEQ ? outs->n : 1;
    if (no < 1) return ag_errorf(err, outs->loc, "'outputs' is empty");
    m->noutputs = (int)no;
    m->outputs = ar_alloc(&s->arena, no * sizeof *m->outputs);
    m->output_locs = ar_alloc(&s->arena, no * sizeof *m->output_locs);
    for (size_t k = 0; k < no; k++) {
        const yt_node *o = outs->kind == YT_SEQ ? outs->items[k] : outs;
        if (yt_str(o, "outputs", &m->outputs[k], err)) return AG_ERR;
        m->output_locs[k] = o->loc;
    }
    return AG_OK;
}

static int load_models(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    if (yt_want(n, YT_MAP, "models", err)) return AG_ERR;
    if (n->n == 0) return ag_errorf(err, n->loc, "'models' is empty");
    s->nmodels = (int)n->n;
    s->models = ar_alloc(&s->arena, n->n * sizeof *s->models);
    for (size_t k = 0; k < n->n; k++)
        if (load_model(s, &n->pairs[k], &s->models[k], err)) return AG_ERR;
    return AG_OK;
}

/* ------------------------------------------------------------------ train -- */

static int load_optim(sp_spec *s, const yt_pair *pair, sp_optim *o, ag_error *err)
{
    const yt_node *n = pair->value;
    o->name = sp_key_of(pair);
    o->loc = pair->key->loc;
    if (yt_want(n, YT_MAP, o->name, err)) return AG_ERR;
    const yt_node *type = yt_need(n, "type", err);
    const char *tname;
    if (!type || yt_str(type, "type", &tname, err)) return AG_ERR;
    o->kind = opt_kind_by_name(tname);
    if (o->kind == OPT_COUNT) {
        sg_best b;
        sg_init(&b, tname);
        for (int k = 0; k < OPT_COUNT; k++) sg_offer(&b, opt_kind_name((opt_kind)k));
        char hint[96];
        return ag_errorf(err, type->loc, "unknown optimizer type '%s'%s (known: sgd, adam, adamw, rmsprop)",
                         tname, sg_hint(&b, hint, sizeof hint));
    }
    o->h = opt_defaults(o->kind);

    /* The keys this kind accepts: type, params, betas, and its hyper-parameters. */
    const char *allowed[40] = {"type", "params"};
    int na = 2;
    if (o->kind == OPT_ADAM || o->kind == OPT_ADAMW) allowed[na++] = "betas";
    for (int k = 0; k < opt_nfields && na < 39; k++)
        if (opt_fields[k].kinds & (1u << o->kind)) allowed[na++] = opt_fields[k].name;
    allowed[na] = NULL;
    if (yt_check_keys(n, allowed, o->name, err)) return AG_ERR;

    for (size_t k = 0; k < n->n; k++) {
        const char *key = sp_key_of(&n->pairs[k]);
        const yt_node *v = n->pairs[k].value;
        const opt_field *f = opt_field_by_name(o->kind, key);
        if (!f) continue;
        void *at = (char *)&o->h + f->offset;
        /* Each value is checked where it stands, so the caret points at it. */
        if (f->is_bool) {
            if (yt_bool(v, key, (int *)at, err)) return AG_ERR;
        } else if (yt_float(v, key, -INFINITY, INFINITY, (double *)at, err) ||
                   opt_check_value(o->kind, f, *(double *)at, v->loc, err)) {
            return AG_ERR;
        }
    }
    const yt_node *betas = yt_get(n, "betas");
    if (betas) {
        if (betas->kind != YT_SEQ || betas->n != 2)
            return ag_errorf(err, betas->loc, "'betas' must be a list of two numbers, like [0.5, 0.999]");
        if (yt_float(betas->items[0], "betas", -INFINITY, INFINITY, &o->h.beta1, err) ||
            opt_check_value(o->kind, opt_field_by_name(o->kind, "beta1"), o->h.beta1, betas->items[0]->loc, err) ||
            yt_float(betas->items[1], "betas", -INFINITY, INFINITY, &o->h.beta2, err) ||
            opt_check_value(o->kind, opt_field_by_name(o->kind, "beta2"), o->h.beta2, betas->items[1]->loc, err))
            return AG_ERR;
    }
    /* What is left to check spans two keys (nesterov with momentum and dampening). */
    const yt_node *nesterov = yt_get(n, "nesterov");
    if (opt_check(o->kind, &o->h, nesterov ? nesterov->loc : n->loc, err)) return AG_ERR;

    const yt_node *params = yt_need(n, "params", err);
    if (!params) return AG_ERR;
    size_t np = params->kind == YT_SEQ ? params->n : 1;
    if (np == 0) return ag_errorf(err, params->loc, "'params' names no model");
    o->nmodels = (int)np;
    o->models = ar_alloc(&s->arena, np * sizeof *o->models);
    o->model_locs = ar_alloc(&s->arena, np * sizeof *o->model_locs);
    for (size_t k = 0; k < np; k++) {
        const yt_node *m = params->kind == YT_SEQ ? params->items[k] : params;
        if (yt_str(m, "params", &o->models[k], err)) return AG_ERR;
        o->model_locs[k] = m->loc;
        if (!sp_find_model(s, o->models[k])) {
            sg_best b;
            sg_init(&b, o->models[k]);
            for (int j = 0; j < s->nmodels; j++) sg_offer(&b, s->models[j].name);
            char hint[96];
            return ag_errorf(err, m->loc, "'params' names no model '%s'%s", o->models[k],
                             sg_hint(&b, hint, sizeof hint));
        }
    }
    return AG_OK;
}

/* A step statement. `- update opt: loss` is a statement to us but a one-pair mapping
 * to YAML (a colon and a space): read that mapping as the statement it spells. */
int sp_parse_stmt_impl(sp_spec *s, const yt_node *n, ex_stmt **out, ag_error *err)
{
    ag_loc at;
    if (n->kind == YT_MAP && n->n == 1 && !n->pairs[0].key->quoted &&
        strncmp(n->pairs[0].key->text, "update", 6) == 0) {
        const yt_node *key = n->pairs[0].key, *val = n->pairs[0].value;
        /* The key alone is "update OPT", a statement missing its loss: parse it with
         * an empty loss to reuse the parser's checks of the optimizer name. */
        char *text = ar_alloc(&s->arena, key->len + 4);
        snprintf(text, key->len + 4, "%s: 0", key->text);
        if (ex_parse_stmt(&s->arena, text, key->loc, out, err)) return AG_ERR;
        if ((*out)->kind != EX_UPDATE)
            return ag_errorf(err, key->loc, "expected 'update OPTIMIZER: LOSS'");
        if (yt_want(val, YT_SCALAR, "the loss", err)) return AG_ERR;
        const char *vt = yt_expr_text(val, &at);
        return comma_hint(val, ex_parse_expr(&s->arena, vt, at, &(*out)->expr, err), err);
    }
    const char *str;
    if (yt_str(n, "step", &str, err)) return AG_ERR;
    const char *text = yt_expr_text(n, &at);
    return comma_hint(n, ex_parse_stmt(&s->arena, text, at, out, err), err);
}

/* on_nan: stop (the default) or skip; max_skipped only means something with skip. */
static int max_skipped_allow(const void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    if (((const sp_spec *)dst)->on_nan_skip) return AG_OK;
    return ag_errorf(err, v->loc, "'max_skipped' needs 'on_nan: skip'");
}

static const sp_key checkpoint_keys[] = {
    {.name = "every", .type = SP_INT, .min = 0, .max = INT_MAX, .offset = offsetof(sp_spec, ckpt_every)},
    {.name = "keep", .type = SP_INT, .min = 0, .max = 1000, .offset = offsetof(sp_spec, ckpt_keep)},
};

static const sp_key train_keys[] = {
    {.name = "epochs", .type = SP_INT, .flags = SP_REQUIRED, .min = 1, .max = 1000000,
     .offset = offsetof(sp_spec, epochs)},
    {.name = "optimizers", .type = SP_OWN},
    {.name = "step", .type = SP_OWN},
    {.name = "log", .type = SP_OWN},
    {.name = "log_every", .type = SP_INT, .min = 1, .max = INT_MAX, .dflt = 50, .offset = offsetof(sp_spec, log_every)},
    {.name = "nll", .type = SP_STR, .flags = SP_HAS_LOC, .offset = offsetof(sp_spec, nll),
     .loc_offset = offsetof(sp_spec, nll_loc)},
    {.name = "checkpoint", .type = SP_MAP, .sub = SP_KEYS(checkpoint_keys)},
    {.name = "on_nan", .type = SP_WORD, .flags = SP_HAS_LOC, .words = (const char *const[]){"stop", "skip", NULL},
     .words_msg = "'on_nan' takes stop or skip, not '%s'", .offset = offsetof(sp_spec, on_nan_skip),
     .loc_offset = offsetof(sp_spec, on_nan_loc)},
    {.name = "max_skipped", .type = SP_INT, .min = 1, .max = 1000000, .dflt = 10,
     .offset = offsetof(sp_spec, max_skipped), .allow = max_skipped_allow},
};

static int load_train(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    if (yt_want(n, YT_MAP, "train", err) || sp_bind_impl(s, SP_KEYS(train_keys), 0, n, "train", s, err)) return AG_ERR;

    const yt_node *opts = yt_need(n, "optimizers", err);
    if (!opts || yt_want(opts, YT_MAP, "optimizers", err)) return AG_ERR;
    if (opts->n == 0) return ag_errorf(err, opts->loc, "'optimizers' is empty");
    /* The training loop keeps per-optimizer and per-scalar records of fixed size. */
    if (opts->n > 16) return ag_errorf(err, opts->loc, "at most 16 optimizers, got %zu", opts->n);
    s->noptims = (int)opts->n;
    s->optims = ar_alloc(&s->arena, opts->n * sizeof *s->optims);
    for (size_t k = 0; k < opts->n; k++)
        if (load_optim(s, &opts->pairs[k], &s->optims[k], err)) return AG_ERR;

    const yt_node *step = yt_need(n, "step", err);
    if (!step || yt_want(step, YT_SEQ, "step", err)) return AG_ERR;
    if (step->n == 0) return ag_errorf(err, step->loc, "'step' is empty");
    s->nsteps = (int)step->n;
    s->steps = ar_alloc(&s->arena, step->n * sizeof *s->steps);
    for (size_t k = 0; k < step->n; k++)
        if (sp_parse_stmt_impl(s, step->items[k], &s->steps[k], err)) return AG_ERR;

    const yt_node *log = yt_get(n, "log");
    if (log) {
        size_t nl = log->kind == YT_SEQ ? log->n : 1;
        if (nl > SP_MAX_LOGS)
            return ag_errorf(err, log->loc, "'log' takes at most %d names, got %zu", SP_MAX_LOGS, nl);
        s->nlogs = (int)nl;
        s->logs = ar_alloc(&s->arena, (nl ? nl : 1) * sizeof *s->logs);
        s->log_locs = ar_alloc(&s->arena, (nl ? nl : 1) * sizeof *s->log_locs);
        for (size_t k = 0; k < nl; k++) {
            const yt_node *e = log->kind == YT_SEQ ? log->items[k] : log;
            if (yt_str(e, "log", &s->logs[k], err)) return AG_ERR;
            s->log_locs[k] = e->loc;
        }
    }
    return AG_OK;
}

/* ------------------------------------------------------------------ spec -- */

/* The run directory is named after it. */
static int name_check(void *dst, const yt_node *map, const yt_node *v, ag_error *err)
{
    const char *name = ((sp_spec *)dst)->name;
    if (!*name) return ag_errorf(err, v->loc, "'name' is empty; it names the run directory");
    for (const char *c = name; *c; c++)
        if (!(*c == '-' || *c == '_' || *c == '.' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z')) || name[0] == '.')
            return ag_errorf(err, v->loc, "'name' names the run directory: use letters, digits, '-', '_' and '.' only");
    return AG_OK;
}

static const sp_key spec_keys[] = {
    {.name = "name", .type = SP_STR, .flags = SP_REQUIRED, .offset = offsetof(sp_spec, name), .check = name_check},
    {.name = "seed", .type = SP_U64, .min = 0, .max = LONG_MAX, .offset = offsetof(sp_spec, seed)},
    {.name = "data", .type = SP_OWN, .flags = SP_REQUIRED, .load = load_data},
    {.name = "schedule", .type = SP_OWN, .load = sp_load_schedule_impl},
    {.name = "models", .type = SP_OWN, .flags = SP_REQUIRED, .load = load_models},
    {.name = "train", .type = SP_OWN, .flags = SP_REQUIRED, .load = load_train},
    {.name = "sample", .type = SP_OWN, .load = sp_load_sample_impl},
    {.name = "hooks", .type = SP_STR, .flags = SP_HAS_LOC, .offset = offsetof(sp_spec, hooks),
     .loc_offset = offsetof(sp_spec, hooks_loc)},
};

int sp_load(sp_spec *s, const char *path, const sp_set *sets, int nsets, ag_error *err)
{
    memset(s, 0, sizeof *s);
    ar_init(&s->arena, 0);
    s->path = path;
    if (yt_load_file(&s->doc, &s->arena, path, err)) return AG_ERR;
    const yt_node *root = s->doc.root;
    if (yt_want(root, YT_MAP, "the spec", err)) return AG_ERR;
    for (int k = 0; k < nsets; k++)
        if (apply_set(s, sets[k].text, err)) return AG_ERR;
    return sp_bind_impl(s, SP_KEYS(spec_keys), 0, root, NULL, s, err);
}

void sp_free(sp_spec *s) { ar_free(&s->arena); }

const sp_model *sp_find_model(const sp_spec *s, const char *name)
{
    for (int k = 0; k < s->nmodels; k++)
        if (strcmp(s->models[k].name, name) == 0) return &s->models[k];
    return NULL;
}

int sp_find_optim(const sp_spec *s, const char *name)
{
    for (int k = 0; k < s->noptims; k++)
        if (strcmp(s->optims[k].name, name) == 0) return k;
    return -1;
}
