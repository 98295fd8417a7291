/* json.c — the flat JSON objects that runs write: metrics rows, run.json, quality.json. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "report_impl.h"

static const char *skip_ws(const char *p)
{
    while (isspace((unsigned char)*p)) p++;
    return p;
}

/* A string at p (after its opening quote) into out; returns the text after its closing
 * quote, or NULL. Escapes other than \" \\ \/ \n \t become the escaped character. */
static const char *read_str(const char *p, char *out, size_t n)
{
    size_t k = 0;
    for (; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p[1]) {
            c = *++p;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
        }
        if (k + 1 < n) out[k++] = c;
    }
    out[k] = 0;
    return *p == '"' ? p + 1 : NULL;
}

/* A value that is neither a number, null nor a string: its text up to the matching
 * bracket, strings inside it skipped whole. */
static const char *read_raw(const char *p, char *out, size_t n)
{
    int depth = 0;
    const char *start = p;
    do {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) return NULL;
        } else if (*p == '[' || *p == '{') {
            depth++;
        } else if (*p == ']' || *p == '}') {
            depth--;
        }
        if (!*p) return NULL;
        p++;
    } while (depth > 0);
    size_t len = (size_t)(p - start) < n - 1 ? (size_t)(p - start) : n - 1;
    memcpy(out, start, len);
    out[len] = 0;
    return p;
}

int rp_json_parse(const char *text, rp_jobject *o)
{
    o->n = 0;
    const char *p = skip_ws(text);
    if (*p++ != '{') return 0;
    p = skip_ws(p);
    if (*p == '}') return 1;
    for (;;) {
        if (*p++ != '"') return 0;
        rp_jfield *f = &o->f[o->n < RP_JSON_MAX ? o->n : RP_JSON_MAX - 1];
        if (!(p = read_str(p, f->key, sizeof f->key))) return 0;
        p = skip_ws(p);
        if (*p++ != ':') return 0;
        p = skip_ws(p);
        if (*p == '"') {
            f->kind = RP_JSTR;
            if (!(p = read_str(p + 1, f->str, sizeof f->str))) return 0;
        } else if (!strncmp(p, "null", 4)) {
            f->kind = RP_JNULL;
            p += 4;
        } else if (*p == '[' || *p == '{') {
            f->kind = RP_JRAW;
            if (!(p = read_raw(p, f->str, sizeof f->str))) return 0;
        } else {
            char *end;
            f->kind = RP_JNUM;
            f->num = strtod(p, &end);
            if (end == p) return 0;
            p = end;
        }
        if (o->n < RP_JSON_MAX) o->n++;
        p = skip_ws(p);
        if (*p == '}') return 1;
        if (*p++ != ',') return 0;
        p = skip_ws(p);
    }
}

const rp_jfield *rp_json_get(const rp_jobject *o, const char *key)
{
    for (int k = 0; k < o->n; k++)
        if (!strcmp(o->f[k].key, key)) return &o->f[k];
    return NULL;
}

void rp_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void rp_html(FILE *f, const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        switch (s[k]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(s[k], f);
        }
    }
}
