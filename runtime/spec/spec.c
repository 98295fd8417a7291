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

static const char *key_of(const yt_pair *p) { return p->key->text; }

/* An expression that ended too soon where a flow collection's comma cut it: says so. */
static int comma_hint(const yt_node *n, int rc, ag_error *err)
{
    if (rc && n->comma_cut && strstr(err->msg, "got end of text"))
        ag_error_addf(err, " (in a flow [list] or {mapping} a comma ends the value: quote it, as in "
                           "'z = randn(batch, 100)')");
    return rc;
}

static int parse_expr(sp_spec *s, const yt_node *n, const char *what, ex_node **out,
                      ag_error *err)
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

/* The keys of a mapping, one table each, in the manner of redis's config table: a key's
 * type, the range or the words it takes, its default and the field its value goes to.
 * sp_bind reads a mapping by its table: the unknown keys and their "did you mean" come
 * from its names, in its order; the range a message states, from its bounds. A key of
 * type SP_OWN is a list, a section or an expression over others: its load function
 * reads it, or else the mapping's own code, after sp_bind. Keys are read pass by pass
 * (pass 0 first), each pass in the table's order: a table lists its names in the order
 * "did you mean" offers them, and numbers passes where it reads its keys in another. */
typedef enum sp_key_type {
    SP_OWN,
    SP_INT,   /* int, in [min, max] */
    SP_U64,   /* uint64_t, in [min, max] */
    SP_FLOAT, /* double, in [lo, hi] */
    SP_BOOL,  /* int */
    SP_STR,   /* const char * (default dflt_text) */
    SP_WORD,  /* int: the index of the value in words; dflt the default's */
    SP_EXPR,  /* ex_node *, dflt_text parsed at the mapping when the key is absent */
    SP_MAP,   /* a mapping of keys sub, whose fields are in the same struct */
    SP_FN,    /* a scalar that check alone reads */
} sp_key_type;

enum {
    SP_REQUIRED = 1u << 0,
    SP_HAS_LOC = 1u << 1, /* the value's place goes to loc_offset (the mapping's if absent) */
    SP_IMAGES = 1u << 2,  /* applies to image data only */
    SP_TEXT = 1u << 3,    /* applies to text data only */
    SP_ALWAYS = 1u << 4,  /* SP_OWN: load is called when the key is absent too */
};

typedef struct sp_key sp_key;
struct sp_key {
    const char *name;
    sp_key_type type;
    unsigned flags;
    long min, max;
    double lo, hi;
    double dflt;
    const char *dflt_text;
    const char *const *words;
    const char *words_msg; /* the refusal of a word, %s the value */
    size_t offset, loc_offset;
    const sp_key *sub;
    int nsub;
    int pass;
    /* SP_OWN: reads the key's value v (NULL when absent, with SP_ALWAYS) into dst. */
    int (*load)(sp_spec *s, void *dst, const yt_node *map, const yt_node *v, ag_error *err);
    /* Called when the key is given, before its value is read: may it be given here? */
    int (*allow)(const void *dst, const yt_node *map, const yt_node *v, ag_error *err);
    /* Called once the value is read (or defaulted: v NULL). */
    int (*check)(void *dst, const yt_node *map, const yt_node *v, ag_error *err);
};

#define SP_KEYS(table) (table), (int)AG_COUNTOF(table)

static int applies(const sp_key *k, unsigned data) { return !(k->flags & (SP_IMAGES | SP_TEXT)) || (k->flags & data); }

static int sp_bind(sp_spec *s, const sp_key *keys, int n, unsigned data, const yt_node *map,
                   const char *where, void *dst, ag_error *err);

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
    case SP_EXPR: return parse_expr(s, v, k->name, (ex_node **)at, err);
    case SP_MAP:
        if (yt_want(v, YT_MAP, k->name, err)) return AG_ERR;
        return sp_bind(s, k->sub, k->nsub, data, v, k->name, dst, err);
    case SP_OWN:
    case SP_FN: return AG_OK;
    }
    return AG_OK;
}

/* Reads the keys of map that the table binds into dst, in the table's order, after
 * refusing any key it does not name; data (SP_IMAGES or SP_TEXT, 0 elsewhere) picks
 * the keys that apply. where names the mapping in messages (NULL: the top level). */
static int sp_bind(sp_spec *s, const sp_key *keys, int n, unsigned data, const yt_node *map,
                   const char *where, void *dst, ag_error *err)
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
} sp_dataset_info;

static const sp_dataset_info datasets[] = {
    {"mnist", "data/mnist", SP_DATA_IMAGES},
    {"fashion-mnist", "/usr/share/datasets/fashion-mnist", SP_DATA_IMAGES},
    {"text", NULL, SP_DATA_TEXT},
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

static const sp_key data_keys[] = {
    {.name = "dataset", .type = SP_OWN},
    {.name = "path", .type = SP_STR, .flags = SP_HAS_LOC, .offset = offsetof(sp_data, path),
     .loc_offset = offsetof(sp_data, path_loc), .check = data_path_check},
    {.name = "batch", .type = SP_INT, .min = 1, .max = 65536, .dflt = 64, .offset = offsetof(sp_data, batch)},
    {.name = "shuffle", .type = SP_BOOL, .dflt = 1, .offset = offsetof(sp_data, shuffle)},
    {.name = "context", .type = SP_INT, .flags = SP_TEXT, .min = 1, .max = 4096, .dflt = 64,
     .offset = offsetof(sp_data, context)},
    {.name = "test", .type = SP_FLOAT, .flags = SP_TEXT, .lo = 0, .hi = 0.5, .dflt = 0.1,
     .offset = offsetof(sp_data, test_fraction)},
    {.name = "x", .type = SP_EXPR, .flags = SP_IMAGES, .dflt_text = "flatten(pixels / 255)",
     .offset = offsetof(sp_data, x)},
    {.name = "x", .type = SP_EXPR, .flags = SP_TEXT, .dflt_text = "tokens", .offset = offsetof(sp_data, x)},
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
        return ag_errorf(err, ds->loc, "unknown dataset '%s'%s (known: mnist, fashion-mnist, text)",
                         d->dataset, sg_hint(&best, hint, sizeof hint));
    }
    d->kind = info->kind;
    return sp_bind(s, SP_KEYS(data_keys), d->kind == SP_DATA_TEXT ? SP_TEXT : SP_IMAGES, n, "data", d, err);
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
    m->name = key_of(pair);
    m->loc = pair->key->loc;
    if (yt_want(n, YT_MAP, m->name, err) || sp_bind(s, SP_KEYS(model_keys), 0, n, m->name, m, err)) return AG_ERR;
    m->has_ema = yt_get(n, "ema") != NULL;
    const yt_node *in = yt_need(n, "in", err);
    if (!in) return AG_ERR;
    if (in->kind == YT_MAP) {
        if (in->n < 1 || in->n > SP_MAX_INPUTS)
            return ag_errorf(err, in->loc, "a model takes 1 to %d inputs", SP_MAX_INPUTS);
        m->ninputs = (int)in->n;
        for (size_t k = 0; k < in->n; k++) {
            m->input_names[k] = key_of(&in->pairs[k]);
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
        gn->name = key_of(&nodes->pairs[k]);
        gn->loc = nodes->pairs[k].key->loc;
        if (parse_expr(s, nodes->pairs[k].value, gn->name, &gn->expr, err)) return AG_ERR;
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
    o->name = key_of(pair);
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
        return ag_errorf(err, type->loc, "unknown optimizer type '%s'%s (known: sgd, adam, adamw)",
                         tname, sg_hint(&b, hint, sizeof hint));
    }
    o->h = opt_defaults(o->kind);

    /* The keys this kind accepts: type, params, betas, and its hyper-parameters. */
    const char *allowed[40] = {"type", "params"};
    int na = 2;
    if (o->kind != OPT_SGD) allowed[na++] = "betas";
    for (int k = 0; k < opt_nfields && na < 39; k++)
        if (opt_fields[k].kinds & (1u << o->kind)) allowed[na++] = opt_fields[k].name;
    allowed[na] = NULL;
    if (yt_check_keys(n, allowed, o->name, err)) return AG_ERR;

    for (size_t k = 0; k < n->n; k++) {
        const char *key = key_of(&n->pairs[k]);
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
static int parse_stmt(sp_spec *s, const yt_node *n, ex_stmt **out, ag_error *err)
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
    if (yt_want(n, YT_MAP, "train", err) || sp_bind(s, SP_KEYS(train_keys), 0, n, "train", s, err)) return AG_ERR;

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
        if (parse_stmt(s, step->items[k], &s->steps[k], err)) return AG_ERR;

    const yt_node *log = yt_get(n, "log");
    if (log) {
        size_t nl = log->kind == YT_SEQ ? log->n : 1;
        if (nl > 64) return ag_errorf(err, log->loc, "'log' takes at most 64 names, got %zu", nl);
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

/* ----------------------------------------------------------------- sample -- */

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
    if (yt_want(n, YT_MAP, "loop", err) || sp_bind(s, SP_KEYS(loop_keys), 0, n, "loop", sm, err)) return AG_ERR;
    sm->has_loop = 1;
    sm->loop_loc = n->loc;
    const yt_node *steps = yt_need(n, "steps", err);
    if (!steps || yt_want(steps, YT_SEQ, "steps", err)) return AG_ERR;
    sm->nloop_steps = (int)steps->n;
    sm->loop_steps = ar_alloc(&s->arena, (steps->n ? steps->n : 1) * sizeof *sm->loop_steps);
    for (size_t k = 0; k < steps->n; k++)
        if (parse_stmt(s, steps->items[k], &sm->loop_steps[k], err)) return AG_ERR;
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

static int load_schedule(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    sp_schedule *sc = &s->schedule;
    sc->loc = n->loc;
    if (yt_want(n, YT_MAP, "schedule", err) || sp_bind(s, SP_KEYS(schedule_keys), 0, n, "schedule", sc, err))
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
        in->name = key_of(pr);
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
            if (sp_bind(s, SP_KEYS(input_keys), 0, v, in->name, in, err)) return AG_ERR;
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
        if (parse_stmt(s, v->items[k], &sm->steps[k], err)) return AG_ERR;
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
    return AG_OK;
}

/* The section's result: an image expression, or a text one. */
static int load_result(sp_spec *s, void *dst, const yt_node *map, const yt_node *img, ag_error *err)
{
    sp_sample *sm = dst;
    const yt_node *txt = yt_get(map, "text");
    if (img && txt)
        return ag_errorf(err, txt->loc, "%s: a section gives 'image' or 'text', not both", sm->name);
    if (txt) return parse_expr(s, txt, "text", &sm->text, err);
    if (!(img = yt_need(map, "image", err)) || parse_expr(s, img, "image", &sm->image, err)) return AG_ERR;
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

static const sp_key strip_keys[] = {
    {.name = "every", .type = SP_INT, .flags = SP_REQUIRED, .min = 1, .max = 1000000,
     .offset = offsetof(sp_sample, strip_every)},
};

/* Offered for "did you mean" in this order, read in the order of the passes. */
static const sp_key section_keys[] = {
    {.name = "image", .type = SP_OWN, .flags = SP_ALWAYS, .pass = 6, .load = load_result},
    {.name = "steps", .type = SP_OWN, .pass = 1, .load = load_section_steps},
    {.name = "loop", .type = SP_OWN, .pass = 4, .load = load_loop},
    {.name = "grid", .type = SP_FN, .pass = 7, .check = grid_check},
    {.name = "range", .type = SP_OWN, .pass = 8, .load = load_image_range},
    {.name = "count", .type = SP_INT, .min = 1, .max = 4096, .dflt = 64, .offset = offsetof(sp_sample, count)},
    {.name = "each_epoch", .type = SP_BOOL, .pass = 3, .dflt = 1, .offset = offsetof(sp_sample, each_epoch)},
    {.name = "inputs", .type = SP_OWN, .pass = 2, .load = load_inputs},
    {.name = "text", .type = SP_OWN},
    {.name = "strip", .type = SP_MAP, .pass = 5, .sub = SP_KEYS(strip_keys), .check = strip_check},
};

/* One section: an image expression over n draws (and the test split's first n
 * images as test_x and test_label), optional statements before it, and the grid. */
static int load_section(sp_spec *s, const char *name, const yt_node *n, sp_sample *sm, ag_error *err)
{
    sm->name = name;
    sm->loc = n->loc;
    if (yt_want(n, YT_MAP, name, err)) return AG_ERR;
    return sp_bind(s, SP_KEYS(section_keys), 0, n, name, sm, err);
}

/* `sample:` is one section (it has an image) or named sections. */
static int load_sample(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err)
{
    if (yt_want(n, YT_MAP, "sample", err)) return AG_ERR;
    if (yt_get(n, "image") || yt_get(n, "text")) {
        s->nsamples = 1;
        s->samples = ar_alloc(&s->arena, sizeof *s->samples);
        return load_section(s, "sample", n, &s->samples[0], err);
    }
    if (n->n == 0) return ag_errorf(err, n->loc, "'sample' is empty: give an image, or named sections");
    s->nsamples = (int)n->n;
    s->samples = ar_alloc(&s->arena, n->n * sizeof *s->samples);
    for (size_t k = 0; k < n->n; k++)
        if (load_section(s, key_of(&n->pairs[k]), n->pairs[k].value, &s->samples[k], err)) return AG_ERR;
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
    {.name = "schedule", .type = SP_OWN, .load = load_schedule},
    {.name = "models", .type = SP_OWN, .flags = SP_REQUIRED, .load = load_models},
    {.name = "train", .type = SP_OWN, .flags = SP_REQUIRED, .load = load_train},
    {.name = "sample", .type = SP_OWN, .load = load_sample},
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
    return sp_bind(s, SP_KEYS(spec_keys), 0, root, NULL, s, err);
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
