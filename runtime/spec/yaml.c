/* yaml.c — libyaml events into a located tree; typed getters; error excerpts. */
#include "aigc/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "aigc/suggest.h"

/* ---- building the tree ---------------------------------------------------------- */

typedef struct yt_frame {
    yt_node *node;
    size_t base; /* where its children start on the scratch stack */
} yt_frame;

typedef struct yt_builder {
    ar_arena *a;
    yt_doc *doc;
    ag_error *err;
    /* Byte offset of each line start: libyaml marks count characters, and a raw
     * slice of the source needs bytes. */
    size_t *lines;
    size_t nlines;
    /* Children of the open collections, copied into the arena when one closes, so
     * that each collection is one exact-size array. */
    yt_node **scratch;
    size_t top, cap;
    yt_frame frames[YT_MAX_DEPTH];
    int depth;
    size_t nodes;
    /* The last mark mapped to an offset: marks come in order along a line, so each is
     * found from the one before, not from the line's start (quadratic on a long line). */
    yaml_mark_t last;
    size_t last_off;
    /* Every mapping key seen, by the hash of its text and its mapping, for the duplicate
     * check: open addressing, (SIZE_MAX, NULL) when free. */
    struct yt_seen {
        size_t at;           /* the key's index on the scratch stack */
        const yt_node *key;
    } *seen;
    size_t nseen, seen_cap;
} yt_builder;

static ag_loc mark_loc(const yt_builder *b, yaml_mark_t m)
{
    return (ag_loc){b->doc->file, (int)m.line + 1, (int)m.column + 1};
}

static int is_cont_byte(unsigned char c) { return (c & 0xC0) == 0x80; }

static void index_lines(yt_builder *b)
{
    const char *s = b->doc->src;
    size_t n = b->doc->src_len, cap = 64;
    b->lines = ag_xmalloc(cap * sizeof *b->lines);
    /* libyaml skips a byte order mark without counting it as a column. */
    b->lines[0] = n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    b->nlines = 1;
    for (size_t i = b->lines[0]; i < n; i++) {
        if (s[i] != '\n' && s[i] != '\r') continue;
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') i++;
        if (b->nlines == cap) b->lines = ag_xrealloc(b->lines, (cap *= 2) * sizeof *b->lines);
        b->lines[b->nlines++] = i + 1;
    }
}

/* The byte offset of a mark, or SIZE_MAX when the mark does not fit the text (libyaml
 * converted UTF-16 input, or counted a line break that is not \n or \r). */
static size_t mark_offset(yt_builder *b, yaml_mark_t m)
{
    if (m.line >= b->nlines) return SIZE_MAX;
    const char *s = b->doc->src;
    size_t i = b->lines[m.line], end = b->doc->src_len, col = 0;
    if (b->last_off != SIZE_MAX && b->last.line == m.line && b->last.column <= m.column) {
        i = b->last_off;
        col = b->last.column;
    }
    for (; col < m.column; col++) {
        if (i >= end || s[i] == '\n' || s[i] == '\r') return SIZE_MAX;
        i++;
        while (i < end && is_cont_byte((unsigned char)s[i])) i++;
    }
    b->last = m;
    b->last_off = i;
    return i;
}

static void scratch_push(yt_builder *b, yt_node *n)
{
    if (b->top == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->scratch = ag_xrealloc(b->scratch, b->cap * sizeof *b->scratch);
    }
    b->scratch[b->top++] = n;
}

/* Where the key text of a mapping whose children start at base is, or would go, in the
 * seen table. An entry whose key no longer sits at its index on the scratch stack
 * belongs to a mapping that has closed: it is skipped, and never matches. */
static struct yt_seen *seen_slot(const yt_builder *b, size_t base, const yt_node *key)
{
    size_t mask = b->seen_cap - 1;
    size_t h = (size_t)ag_fnv1a(ag_fnv1a(AG_FNV_BASIS, &base, sizeof base), key->text, key->len);
    for (size_t k = h & mask;; k = (k + 1) & mask) {
        struct yt_seen *e = &b->seen[k];
        if (!e->key) return e;
        int live = e->at >= base && e->at < b->top && b->scratch[e->at] == e->key;
        if (live && e->key->len == key->len && memcmp(e->key->text, key->text, key->len) == 0)
            return e;
    }
}

static void seen_grow(yt_builder *b)
{
    struct yt_seen *old = b->seen;
    size_t n = b->seen_cap;
    b->seen_cap = n ? 2 * n : 64;
    b->seen = ag_xcalloc(b->seen_cap, sizeof *b->seen);
    b->nseen = 0;
    for (size_t k = 0; k < n; k++) {
        const struct yt_seen *e = &old[k];
        /* Keys of closed mappings are dropped here. */
        if (!e->key || e->at >= b->top || b->scratch[e->at] != e->key) continue;
        size_t base = 0;
        for (int d = b->depth; d > 0; d--)
            if (b->frames[d - 1].base <= e->at) {
                base = b->frames[d - 1].base;
                break;
            }
        *seen_slot(b, base, e->key) = *e;
        b->nseen++;
    }
    free(old);
}

/* Attach a new node to the open collection (or make it the root), checking the rules
 * that apply to mapping keys. */
static int attach(yt_builder *b, yt_node *n)
{
    if (++b->nodes > YT_MAX_NODES)
        return ag_errorf(b->err, n->loc, "more than %d values in one spec; a spec is not this large",
                         YT_MAX_NODES);
    if (b->depth == 0) {
        b->doc->root = n;
        return AG_OK;
    }
    const yt_frame *f = &b->frames[b->depth - 1];
    if (f->node->kind == YT_MAP && (b->top - f->base) % 2 == 0) {
        if (n->kind != YT_SCALAR)
            return ag_errorf(b->err, n->loc, "a mapping key must be a plain value, not %s",
                             n->kind == YT_MAP ? "a mapping" : "a list");
        if (2 * (b->nseen + 1) > b->seen_cap) seen_grow(b);
        struct yt_seen *e = seen_slot(b, f->base, n);
        if (e->key)
            return ag_errorf(b->err, n->loc, "duplicate key '%s' (first at %d:%d)", n->text,
                             e->key->loc.line, e->key->loc.col);
        *e = (struct yt_seen){b->top, n};
        b->nseen++;
    }
    scratch_push(b, n);
    return AG_OK;
}

static int refuse_properties(yt_builder *b, yaml_mark_t at, const yaml_char_t *anchor,
                             const yaml_char_t *tag)
{
    if (anchor)
        return ag_errorf(b->err, mark_loc(b, at),
                         "anchors are not supported ('&%s'); write the value out",
                         (const char *)anchor);
    if (tag)
        return ag_errorf(b->err, mark_loc(b, at), "tags are not supported ('%s')",
                         (const char *)tag);
    return AG_OK;
}

static int on_scalar(yt_builder *b, const yaml_event_t *e)
{
    if (refuse_properties(b, e->start_mark, e->data.scalar.anchor, e->data.scalar.tag))
        return AG_ERR;
    yt_node *n = ar_alloc(b->a, sizeof *n);
    n->kind = YT_SCALAR;
    n->loc = mark_loc(b, e->start_mark);
    n->len = e->data.scalar.length;
    n->text = ar_strndup(b->a, (const char *)e->data.scalar.value, n->len);
    yaml_scalar_style_t style = e->data.scalar.style;
    n->quoted = style != YAML_PLAIN_SCALAR_STYLE;
    size_t from = mark_offset(b, e->start_mark), to = mark_offset(b, e->end_mark);
    int mapped = from != SIZE_MAX && to != SIZE_MAX && to >= from;
    int one_line = mapped && e->start_mark.line == e->end_mark.line;
    /* raw stays NULL (the arena zeroes) when quoted, or when the file cannot be mapped. */
    if (!n->quoted && mapped) {
        n->raw = one_line ? n->text : ar_strndup(b->a, b->doc->src + from, to - from);
        /* A plain scalar outside a flow collection takes a comma into its text: one
         * that ends before a comma is a flow item. */
        size_t k = to;
        while (k < b->doc->src_len && (b->doc->src[k] == ' ' || b->doc->src[k] == '\t')) k++;
        n->comma_cut = k < b->doc->src_len && b->doc->src[k] == ',';
    }
    int quotes = style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    if (one_line && !n->quoted) /* raw is text */
        n->text_col = n->loc.col;
    else if (one_line && quotes && to - from == n->len + 2)
        n->text_col = n->loc.col + 1;
    return attach(b, n);
}

static int on_start(yt_builder *b, const yaml_event_t *e, yt_kind kind)
{
    const yaml_char_t *anchor = kind == YT_MAP ? e->data.mapping_start.anchor
                                               : e->data.sequence_start.anchor;
    const yaml_char_t *tag = kind == YT_MAP ? e->data.mapping_start.tag
                                            : e->data.sequence_start.tag;
    if (refuse_properties(b, e->start_mark, anchor, tag)) return AG_ERR;
    yt_node *n = ar_alloc(b->a, sizeof *n);
    n->kind = kind;
    n->loc = mark_loc(b, e->start_mark);
    if (b->depth == YT_MAX_DEPTH)
        return ag_errorf(b->err, n->loc, "nested deeper than %d levels", YT_MAX_DEPTH);
    if (attach(b, n)) return AG_ERR;
    b->frames[b->depth++] = (yt_frame){n, b->top};
    return AG_OK;
}

static void on_end(yt_builder *b)
{
    AG_ASSERT(b->depth > 0);
    yt_frame f = b->frames[--b->depth];
    size_t count = b->top - f.base;
    yt_node **kids = b->scratch + f.base;
    if (f.node->kind == YT_SEQ) {
        f.node->n = count;
        f.node->items = ar_alloc(b->a, count * sizeof *f.node->items);
        memcpy(f.node->items, kids, count * sizeof *kids);
    } else {
        AG_ASSERT(count % 2 == 0);
        f.node->n = count / 2;
        f.node->pairs = ar_alloc(b->a, f.node->n * sizeof *f.node->pairs);
        for (size_t i = 0; i < f.node->n; i++)
            f.node->pairs[i] = (yt_pair){kids[2 * i], kids[2 * i + 1]};
    }
    b->top = f.base;
}

/* libyaml's reader reports a byte offset, not a mark. */
static ag_loc offset_loc(const yt_builder *b, size_t off)
{
    ag_loc loc = {b->doc->file, 1, 1};
    for (size_t i = 0; i < off && i < b->doc->src_len; i++) {
        char c = b->doc->src[i];
        if (c == '\n') {
            loc.line++;
            loc.col = 1;
        } else if (!is_cont_byte((unsigned char)c)) {
            loc.col++;
        }
    }
    return loc;
}

/* The offset of the first byte of s[0, n) that does not begin a well-formed UTF-8
 * character (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or
 * SIZE_MAX when there is none. */
static size_t utf8_bad(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        int more = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
                                 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (more < 0 || n - i - 1 < (size_t)more) return i;
        /* The second byte's range is narrower after these leading bytes. */
        unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        for (int k = 1; k <= more; k++) {
            unsigned char d = s[i + (size_t)k];
            if (k == 1 ? d < lo || d > hi : !is_cont_byte(d)) return i;
        }
        i += (size_t)more + 1;
    }
    return SIZE_MAX;
}

/* Whether the indentation of line `line` (0-based) has a tab. */
static int tab_indents(const char *src, size_t len, size_t line)
{
    size_t k = 0;
    for (; line > 0 && k < len; k++) line -= src[k] == '\n';
    for (; k < len && (src[k] == ' ' || src[k] == '\t'); k++)
        if (src[k] == '\t') return 1;
    return 0;
}

/* The spaces before line `line` (0-based) begins, or -1 for a line with nothing but
 * spaces or a comment. */
static long line_indent(const yt_builder *b, size_t line)
{
    const char *s = b->doc->src;
    size_t i = b->lines[line], end = b->doc->src_len;
    while (i < end && s[i] == ' ') i++;
    if (i == end || s[i] == '\n' || s[i] == '\r' || s[i] == '#') return -1;
    return (long)(i - b->lines[line]);
}

/* libyaml's words for a misindented line do not say so. It reads a line indented deeper
 * than the one above as the rest of that line's value ("mapping values are not allowed"
 * at its colon), and a line between two levels of a block mapping as no key at all
 * ("did not find expected key"). */
static void indentation_hint(yt_builder *b, const yaml_parser_t *p)
{
    size_t line = p->problem_mark.line;
    if (line >= b->nlines || !p->problem) return;
    long indent = line_indent(b, line);
    if (indent < 0) return;
    if (strcmp(p->problem, "mapping values are not allowed in this context") == 0) {
        size_t above = line;
        while (above > 0 && line_indent(b, above - 1) < 0) above--;
        if (above > 0 && indent > line_indent(b, above - 1))
            ag_error_addf(b->err, "; check the indentation of line %zu: deeper than line %zu, it "
                                  "continues that line's value", line + 1, above);
    } else if (strcmp(p->problem, "did not find expected key") == 0 && p->context &&
               strcmp(p->context, "while parsing a block mapping") == 0 &&
               (size_t)indent != p->context_mark.column) {
        ag_error_addf(b->err, "; check the indentation of line %zu: the mapping at %d:%d has its keys "
                              "at column %d", line + 1, (int)p->context_mark.line + 1,
                      (int)p->context_mark.column + 1, (int)p->context_mark.column + 1);
    }
}

static int parse_error(yt_builder *b, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return ag_errorf(b->err, (ag_loc){b->doc->file, 0, 0}, "out of memory while parsing");
    case YAML_READER_ERROR:
        /* libyaml names the byte where it gave up, which for a Latin-1 letter is the
         * one after it: name the letter instead. */
        if (p->encoding == YAML_UTF8_ENCODING) {
            size_t at = utf8_bad((const unsigned char *)b->doc->src, b->doc->src_len);
            if (at != SIZE_MAX)
                return ag_errorf(b->err, offset_loc(b, at),
                                 "byte 0x%02X is not UTF-8: a spec must be UTF-8 text (was the "
                                 "file saved as Latin-1?)",
                                 (unsigned char)b->doc->src[at]);
        }
        if (p->problem_value != -1)
            return ag_errorf(b->err, offset_loc(b, p->problem_offset), "%s (byte 0x%02X)",
                             problem, (unsigned)p->problem_value);
        return ag_errorf(b->err, offset_loc(b, p->problem_offset), "%s", problem);
    default:
        if (p->context)
            ag_errorf(b->err, mark_loc(b, p->problem_mark), "%s (%s at %d:%d)", problem, p->context,
                      (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
        else
            ag_errorf(b->err, mark_loc(b, p->problem_mark), "%s", problem);
        /* libyaml's words for a tab in the indentation do not say it is one. */
        if (tab_indents(b->doc->src, b->doc->src_len, p->problem_mark.line))
            ag_error_addf(b->err, "; YAML indents with spaces, and this line's indentation has a tab");
        else
            indentation_hint(b, p);
        return AG_ERR;
    }
}

/* One event; *done is set at the end of the stream. */
static int on_event(yt_builder *b, const yaml_event_t *e, int *done)
{
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->doc->root)
            return ag_errorf(b->err, mark_loc(b, e->start_mark),
                             "a second document; a spec is a single YAML document");
        return AG_OK;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        if (!b->doc->root)
            return ag_errorf(b->err, (ag_loc){b->doc->file, 0, 0},
                             "empty file; expected a YAML document");
        return AG_OK;
    case YAML_ALIAS_EVENT:
        return ag_errorf(b->err, mark_loc(b, e->start_mark),
                         "aliases are not supported ('*%s'); write the value out",
                         (const char *)e->data.alias.anchor);
    case YAML_SCALAR_EVENT: return on_scalar(b, e);
    case YAML_SEQUENCE_START_EVENT: return on_start(b, e, YT_SEQ);
    case YAML_MAPPING_START_EVENT: return on_start(b, e, YT_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: on_end(b); return AG_OK;
    default: return AG_OK; /* stream start, document end, no event */
    }
}

int yt_load_string(yt_doc *doc, ar_arena *a, const char *file, const char *text,
                   size_t len, ag_error *err)
{
    *doc = (yt_doc){.file = ar_strdup(a, file), .src = ar_strndup(a, text, len), .src_len = len};

    yt_builder b = {.a = a, .doc = doc, .err = err, .last_off = SIZE_MAX};
    index_lines(&b);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        free(b.lines);
        return ag_errorf(err, (ag_loc){doc->file, 0, 0}, "out of memory while parsing");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)doc->src, len);
    int status = AG_OK, done = 0;
    while (!done && status == AG_OK) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            status = parse_error(&b, &p);
            break;
        }
        status = on_event(&b, &e, &done);
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    free(b.lines);
    free(b.scratch);
    free(b.seen);
    if (status != AG_OK) doc->root = NULL;
    return status;
}

int yt_load_file(yt_doc *doc, ar_arena *a, const char *path, ag_error *err)
{
    *doc = (yt_doc){.file = ar_strdup(a, path)};
    ag_loc at = {doc->file, 0, 0};
    char why[128];
    int fd = ag_open_regular(path, O_RDONLY, why, sizeof why);
    if (fd < 0) return ag_errorf(err, at, "cannot open: %s", why);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ag_errorf(err, at, "cannot read: %s", strerror(e));
    }
    if ((uintmax_t)st.st_size > YT_MAX_BYTES) {
        close(fd);
        return ag_errorf(err, at, "%jd bytes, more than the %u MiB a spec may have", (intmax_t)st.st_size,
                         YT_MAX_BYTES >> 20);
    }
    /* One byte more than the size, to see the file grow as it is read. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = ag_xmalloc(cap);
    ssize_t got = 1;
    while (len < cap && (got = read(fd, buf + len, cap - len)) > 0) len += (size_t)got;
    int e = errno;
    close(fd);
    int status;
    if (got < 0)
        status = ag_errorf(err, at, "cannot read: %s", strerror(e));
    else if (len == cap)
        status = ag_errorf(err, at, "cannot read: the file grew while it was read");
    else
        status = yt_load_string(doc, a, path, buf, len, err);
    free(buf);
    return status;
}

/* ---- access ----------------------------------------------------------------------- */

const yt_node *yt_get(const yt_node *map, const char *key)
{
    AG_ASSERT(map && map->kind == YT_MAP);
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pairs[i].key->text, key) == 0) return map->pairs[i].value;
    return NULL;
}

const yt_node *yt_need(const yt_node *map, const char *key, ag_error *err)
{
    const yt_node *v = yt_get(map, key);
    if (!v) ag_errorf(err, map->loc, "missing key '%s'", key);
    return v;
}

static int is_empty(const yt_node *n)
{
    return n->kind == YT_SCALAR && !n->quoted && n->len == 0;
}

/* What the user wrote, for "got ...": a kind, or the text (shortened). */
static const char *describe(const yt_node *n, char *buf, size_t size)
{
    if (n->kind == YT_MAP) return "a mapping";
    if (n->kind == YT_SEQ) return "a list";
    if (is_empty(n)) return "an empty value";
    const char *fmt = n->quoted ? "the quoted string '%.*s%s'" : "'%.*s%s'";
    snprintf(buf, size, fmt, n->len > 40 ? 37 : (int)n->len, n->text, n->len > 40 ? "..." : "");
    return buf;
}

static int wrong(const yt_node *n, const char *name, const char *want, ag_error *err)
{
    char buf[96];
    return ag_errorf(err, n->loc, "'%s' must be %s, got %s", name, want, describe(n, buf, sizeof buf));
}

int yt_want(const yt_node *n, yt_kind kind, const char *name, ag_error *err)
{
    static const char *const want[] = {"a single value", "a list", "a mapping"};
    if (n->kind == kind && !(kind == YT_SCALAR && is_empty(n))) return AG_OK;
    return wrong(n, name, want[kind], err);
}

static int plain_text_is(const yt_node *n, const char *chars)
{
    return n->kind == YT_SCALAR && !n->quoted && n->len > 0 && strspn(n->text, chars) == n->len;
}

int yt_int(const yt_node *n, const char *name, long min, long max, long *out,
           ag_error *err)
{
    char want[96];
    if (min == LONG_MIN && max == LONG_MAX)
        snprintf(want, sizeof want, "an integer");
    else if (min == LONG_MIN)
        snprintf(want, sizeof want, "an integer <= %ld", max);
    else if (max == LONG_MAX)
        snprintf(want, sizeof want, "an integer >= %ld", min);
    else
        snprintf(want, sizeof want, "an integer in [%ld, %ld]", min, max);
    if (!plain_text_is(n, "+-0123456789")) return wrong(n, name, want, err);
    char *end;
    errno = 0;
    long v = strtol(n->text, &end, 10);
    if (end == n->text || *end || errno == ERANGE || v < min || v > max)
        return wrong(n, name, want, err);
    *out = v;
    return AG_OK;
}

static int is_inf_word(const char *s)
{
    if (*s == '+' || *s == '-') s++;
    if (*s == '.') s++;
    return strcasecmp(s, "inf") == 0;
}

int yt_float(const yt_node *n, const char *name, double min, double max, double *out,
             ag_error *err)
{
    char want[96];
    if (isinf(min) && isinf(max))
        snprintf(want, sizeof want, "a number");
    else if (isinf(min))
        snprintf(want, sizeof want, "a number <= %g", max);
    else if (isinf(max))
        snprintf(want, sizeof want, "a number >= %g", min);
    else
        snprintf(want, sizeof want, "a number in [%g, %g]", min, max);
    double v;
    if (n->kind == YT_SCALAR && !n->quoted && is_inf_word(n->text)) {
        v = n->text[0] == '-' ? -INFINITY : INFINITY;
    } else {
        /* strtod alone would also take hex floats, nan and "infinity". */
        if (!plain_text_is(n, "+-.0123456789eE")) return wrong(n, name, want, err);
        char *end;
        errno = 0;
        v = strtod(n->text, &end);
        if (end == n->text || *end || (errno == ERANGE && isinf(v)))
            return wrong(n, name, want, err);
    }
    if (!(v >= min && v <= max)) return wrong(n, name, want, err);
    *out = v;
    return AG_OK;
}

int yt_bool(const yt_node *n, const char *name, int *out, ag_error *err)
{
    if (n->kind == YT_SCALAR && !n->quoted) {
        if (strcasecmp(n->text, "true") == 0) return *out = 1, AG_OK;
        if (strcasecmp(n->text, "false") == 0) return *out = 0, AG_OK;
    }
    return wrong(n, name, "true or false", err);
}

int yt_str(const yt_node *n, const char *name, const char **out, ag_error *err)
{
    if (n->kind != YT_SCALAR || is_empty(n)) return wrong(n, name, "a string", err);
    *out = n->text;
    return AG_OK;
}

int yt_check_keys(const yt_node *map, const char *const *allowed, const char *where,
                  ag_error *err)
{
    AG_ASSERT(map->kind == YT_MAP);
    for (size_t i = 0; i < map->n; i++) {
        const yt_node *k = map->pairs[i].key;
        sg_best best;
        sg_init(&best, k->text);
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++) {
            known = strcmp(*a, k->text) == 0;
            sg_offer(&best, *a);
        }
        if (known) continue;
        char hint[160];
        sg_hint(&best, hint, sizeof hint);
        /* `{image: G(randn(64, 100))}`: in a flow mapping the comma ends the value. */
        if (!hint[0] && strpbrk(k->text, "()"))
            snprintf(hint, sizeof hint, " (a comma inside {...} ends a value: quote the expression, or write "
                                        "the mapping one key per line)");
        if (where) return ag_errorf(err, k->loc, "unknown key '%s' in '%s'%s", k->text, where, hint);
        return ag_errorf(err, k->loc, "unknown key '%s'%s", k->text, hint);
    }
    return AG_OK;
}

const char *yt_expr_text(const yt_node *n, ag_loc *at)
{
    AG_ASSERT(n->kind == YT_SCALAR);
    *at = n->loc;
    if (!n->quoted) return n->raw ? n->raw : n->text;
    at->col++;
    return n->text;
}

/* ---- error excerpts ------------------------------------------------------------- */

void yt_annotate(ag_error *err, const yt_doc *doc)
{
    if (!doc->file || !doc->src) return;
    size_t flen = strlen(doc->file);
    const char *m = err->msg;
    if (strncmp(m, doc->file, flen) != 0 || m[flen] != ':') {
        if (doc->next) yt_annotate(err, doc->next);
        return;
    }
    char *end;
    long line = strtol(m + flen + 1, &end, 10);
    if (*end != ':' || line < 1) return;
    long col = strtol(end + 1, &end, 10);
    if (*end != ':' || col < 1) return;
    /* Annotated once already: eval --quality's classifier spec may be the main spec. */
    char quoted[32];
    snprintf(quoted, sizeof quoted, "\n  %ld | ", line);
    if (strstr(m, quoted)) return;

    const char *s = doc->src, *stop = doc->src + doc->src_len;
    if (doc->src_len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3; /* not a column */
    for (long l = 1; l < line && s < stop; s++)
        if (*s == '\n') l++;
    if (s >= stop && line > 1) return;
    const char *eol = s;
    while (eol < stop && *eol != '\n' && *eol != '\r') eol++;

    size_t used = strlen(err->msg), room = sizeof err->msg - used;
    int k = snprintf(err->msg + used, room, "\n  %ld | %.*s\n  %*s | ", line, (int)(eol - s), s,
                     snprintf(NULL, 0, "%ld", line), "");
    if (k < 0 || (size_t)k >= room) return;
    used += (size_t)k;
    /* Copy tabs so that the caret lines up however the terminal expands them. */
    long c = 1;
    for (const char *p = s; c < col && p < eol && used + 2 < sizeof err->msg; p++) {
        if (is_cont_byte((unsigned char)*p)) continue;
        err->msg[used++] = *p == '\t' ? '\t' : ' ';
        c++;
    }
    if (used + 2 <= sizeof err->msg) {
        err->msg[used++] = '^';
        err->msg[used] = 0;
    }
}
