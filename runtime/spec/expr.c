/* expr.c — the step language: a lexer, a recursive-descent parser, a dumper. */
#include "aigc/expr.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lexer ------------------------------------------------------------------------ */

typedef enum ex_tok_kind {
    T_END, T_NAME, T_NUM, T_LPAREN, T_RPAREN, T_COMMA, T_EQ, T_COLON,
    T_PLUS, T_MINUS, T_STAR, T_SLASH, T_POW
} ex_tok_kind;

typedef struct ex_tok {
    ex_tok_kind kind;
    const char *s; /* into the text */
    size_t len;
    ag_loc loc;
} ex_tok;

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_word(int c) { return is_alpha(c) || is_digit(c); }

int ex_is_name(const char *text)
{
    if (!is_alpha((unsigned char)*text)) return 0;
    while (*++text)
        if (!is_word((unsigned char)*text)) return 0;
    return 1;
}

/* The end of a number that starts at s, or NULL when it is malformed; *stop is where
 * the malformed text ends, for the message. */
static const char *scan_number(const char *s, const char **stop)
{
    const char *p = s;
    int ok = 1;
    while (is_digit(*p)) p++;
    if (*p == '.') {
        p++;
        while (is_digit(*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-') q++;
        ok = is_digit(*q);
        p = q;
        while (is_digit(*p)) p++;
    }
    /* "2x" or "1.2.3" is one bad number, not a number and a name. */
    if (!ok || is_word(*p) || *p == '.') {
        while (is_word(*p) || *p == '.') p++;
        *stop = p;
        return NULL;
    }
    return p;
}

/* Tokens into a fresh array ending in T_END; NULL (with a message) on a bad one. */
static ex_tok *lex(const char *text, ag_loc at, ag_error *err)
{
    ex_tok *toks = ag_xmalloc((strlen(text) + 1) * sizeof *toks);
    size_t n = 0;
    ag_loc loc = at;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            if (*p == '\n') {
                loc.line++;
                loc.col = 1;
            } else if (!(*p == '\r' && p[1] == '\n')) {
                loc.col++;
            }
            p++;
        }
        ex_tok t = {T_END, p, 1, loc};
        const char *end = p + 1;
        switch (*p) {
        case 0: end = p; break;
        case '(': t.kind = T_LPAREN; break;
        case ')': t.kind = T_RPAREN; break;
        case ',': t.kind = T_COMMA; break;
        case '=': t.kind = T_EQ; break;
        case ':': t.kind = T_COLON; break;
        case '+': t.kind = T_PLUS; break;
        case '-': t.kind = T_MINUS; break;
        case '/': t.kind = T_SLASH; break;
        case '*':
            t.kind = p[1] == '*' ? T_POW : T_STAR;
            end = p + (p[1] == '*' ? 2 : 1);
            break;
        default:
            if (is_alpha(*p)) {
                t.kind = T_NAME;
                while (is_word(*end)) end++;
            } else if (is_digit(*p) || (*p == '.' && is_digit(p[1]))) {
                const char *stop;
                t.kind = T_NUM;
                end = scan_number(p, &stop);
                if (!end) {
                    ag_errorf(err, loc, "malformed number '%.*s'", (int)(stop - p), p);
                    free(toks);
                    return NULL;
                }
            } else {
                unsigned char c = (unsigned char)*p;
                if (c < 0x20 || c == 0x7F)
                    ag_errorf(err, loc, "unexpected control character 0x%02X", c);
                else {
                    int k = 1; /* a whole UTF-8 sequence, so the message stays valid */
                    while (k < 4 && ((unsigned char)p[k] & 0xC0) == 0x80) k++;
                    ag_errorf(err, loc, "unexpected character '%.*s'", c < 0x80 ? 1 : k, p);
                }
                free(toks);
                return NULL;
            }
        }
        t.len = (size_t)(end - p);
        toks[n++] = t;
        if (t.kind == T_END) break;
        for (; p < end; p++)
            if (((unsigned char)*p & 0xC0) != 0x80) loc.col++;
    }
    return toks;
}

/* ---- parser ----------------------------------------------------------------------- */

typedef struct ex_parser {
    ar_arena *a;
    ag_error *err;
    const ex_tok *t; /* the current token; the array ends in T_END, so a token that is
                      * not T_END always has a next one */
    int depth;
} ex_parser;

/* "'x'" or "end of text", for "got ..." */
static const char *tok_desc(const ex_tok *t, char *buf, size_t size)
{
    if (t->kind == T_END) return "end of text";
    snprintf(buf, size, "'%.*s'", t->len > 40 ? 40 : (int)t->len, t->s);
    return buf;
}

/* "expected X, got 'tok'" at the current token. fmt describes X. */
__attribute__((format(printf, 2, 3))) static void *expected(ex_parser *p, const char *fmt, ...)
{
    char what[256], got[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ag_errorf(p->err, p->t->loc, "expected %s, got %s", what, tok_desc(p->t, got, sizeof got));
    return NULL;
}

static ex_node *new_node(ex_parser *p, ex_kind kind, ag_loc loc)
{
    ex_node *n = ar_alloc(p->a, sizeof *n);
    n->kind = kind;
    n->loc = loc;
    n->height = 1;
    return n;
}

static void *too_deep(ex_parser *p, ag_loc at)
{
    ag_errorf(p->err, at,
              "expression nested deeper than %d levels (each operator, call and bracket is "
              "one); split it into named steps", EX_MAX_DEPTH);
    return NULL;
}

/* Makes child a part of parent. The tree's height is bounded, not only the brackets: a
 * chain `x + 0 + 0 ...` is as deep as it is long, and whatever walks the tree recurses. */
static ex_node *adopt(ex_parser *p, ex_node *parent, const ex_node *child)
{
    if (child->height >= parent->height) parent->height = child->height + 1;
    return parent->height > EX_MAX_DEPTH ? too_deep(p, parent->loc) : parent;
}

static ex_node *parse_sum(ex_parser *p);
static ex_node *parse_unary(ex_parser *p);

static ex_node *parse_call(ex_parser *p)
{
    const ex_tok *name = p->t;
    ex_arg args[EX_MAX_ARGS];
    size_t n = 0;
    int keywords = 0;
    p->t += 2; /* the name and '(' */
    while (n > 0 || p->t->kind != T_RPAREN) {
        if (n == EX_MAX_ARGS) {
            ag_errorf(p->err, p->t->loc, "too many arguments to '%.*s' (more than %d)",
                      (int)name->len, name->s, EX_MAX_ARGS);
            return NULL;
        }
        ex_arg *arg = &args[n];
        *arg = (ex_arg){0};
        if (p->t->kind == T_NAME && p->t[1].kind == T_EQ) {
            arg->key = ar_strndup(p->a, p->t->s, p->t->len);
            arg->key_loc = p->t->loc;
            for (size_t i = 0; i < n; i++)
                if (args[i].key && strcmp(args[i].key, arg->key) == 0) {
                    ag_errorf(p->err, p->t->loc, "keyword argument '%s' given twice", arg->key);
                    return NULL;
                }
            keywords = 1;
            p->t += 2;
        } else if (keywords) {
            ag_errorf(p->err, p->t->loc, "positional argument after keyword arguments");
            return NULL;
        }
        if (!(arg->value = parse_sum(p))) return NULL;
        n++;
        if (p->t->kind == T_RPAREN) break;
        if (p->t->kind != T_COMMA)
            return expected(p, "',' or ')' after an argument of '%.*s'", (int)name->len, name->s);
        p->t++;
    }
    p->t++;
    ex_node *c = new_node(p, EX_CALL, name->loc);
    c->text = ar_strndup(p->a, name->s, name->len);
    c->nargs = n;
    c->args = ar_alloc(p->a, n * sizeof *c->args);
    memcpy(c->args, args, n * sizeof *args);
    for (size_t i = 0; i < n; i++)
        if (!adopt(p, c, args[i].value)) return NULL;
    return c;
}

static ex_node *parse_primary(ex_parser *p)
{
    const ex_tok *t = p->t;
    switch (t->kind) {
    case T_NUM: {
        ex_node *n = new_node(p, EX_NUM, t->loc);
        n->text = ar_strndup(p->a, t->s, t->len);
        n->num = strtod(n->text, NULL);
        n->is_int = strcspn(n->text, ".eE") == t->len;
        if (isinf(n->num)) {
            ag_errorf(p->err, t->loc, "number out of range '%s'", n->text);
            return NULL;
        }
        p->t++;
        return n;
    }
    case T_NAME: {
        if (p->t[1].kind == T_LPAREN) return parse_call(p);
        ex_node *n = new_node(p, EX_NAME, t->loc);
        n->text = ar_strndup(p->a, t->s, t->len);
        p->t++;
        return n;
    }
    case T_LPAREN: {
        p->t++;
        ex_node *n = parse_sum(p);
        if (!n) return NULL;
        if (p->t->kind != T_RPAREN)
            return expected(p, "')' to close '(' at %d:%d", t->loc.line, t->loc.col);
        p->t++;
        return n;
    }
    default: return expected(p, "an expression");
    }
}

/* Every path of recursion goes through here, so this is where the parser's own depth is
 * bounded (brackets make no node, so the tree's height alone would not). */
static ex_node *parse_unary(ex_parser *p)
{
    if (p->depth == EX_MAX_DEPTH) return too_deep(p, p->t->loc);
    p->depth++;
    ex_node *n;
    if (p->t->kind == T_MINUS) {
        n = new_node(p, EX_NEG, p->t->loc);
        p->t++;
        if (!(n->lhs = parse_unary(p)) || !adopt(p, n, n->lhs)) return NULL;
    } else if ((n = parse_primary(p)) && p->t->kind == T_POW) {
        ex_node *pow = new_node(p, EX_BIN, p->t->loc);
        pow->op = EX_POW;
        pow->lhs = n;
        p->t++;
        /* The right side is a unary: 2 ** -1 is fine, and 2 ** 3 ** 2 groups right. */
        if (!(pow->rhs = parse_unary(p)) || !adopt(p, pow, n) || !adopt(p, pow, pow->rhs))
            return NULL;
        n = pow;
    }
    p->depth--;
    return n;
}

static ex_node *parse_binary(ex_parser *p, ex_tok_kind k1, ex_op op1, ex_tok_kind k2, ex_op op2,
                             ex_node *(*operand)(ex_parser *))
{
    ex_node *l = operand(p);
    while (l && (p->t->kind == k1 || p->t->kind == k2)) {
        ex_node *b = new_node(p, EX_BIN, p->t->loc);
        b->op = p->t->kind == k1 ? op1 : op2;
        b->lhs = l;
        p->t++;
        if (!(b->rhs = operand(p)) || !adopt(p, b, l) || !adopt(p, b, b->rhs)) return NULL;
        l = b;
    }
    return l;
}

static ex_node *parse_product(ex_parser *p)
{
    return parse_binary(p, T_STAR, EX_MUL, T_SLASH, EX_DIV, parse_unary);
}

static ex_node *parse_sum(ex_parser *p)
{
    return parse_binary(p, T_PLUS, EX_ADD, T_MINUS, EX_SUB, parse_product);
}

static int expect_end(ex_parser *p)
{
    if (p->t->kind == T_END) return AG_OK;
    char got[64];
    if (p->t->kind == T_EQ)
        return ag_errorf(p->err, p->t->loc,
                         "only names can be assigned to, not an expression");
    return ag_errorf(p->err, p->t->loc, "unexpected %s after the expression",
                     tok_desc(p->t, got, sizeof got));
}

/* `a, b =` : the targets, left in s->names. */
static int parse_targets(ex_parser *p, ex_stmt *s)
{
    const ex_tok *first = p->t;
    size_t n = 0;
    for (const ex_tok *t = first; t->kind == T_NAME; t += 2) {
        n++;
        if (t[1].kind != T_COMMA) break;
    }
    s->names = ar_alloc(p->a, n * sizeof *s->names);
    s->name_locs = ar_alloc(p->a, n * sizeof *s->name_locs);
    for (s->nnames = 0; s->nnames < n; s->nnames++) {
        s->names[s->nnames] = ar_strndup(p->a, p->t->s, p->t->len);
        s->name_locs[s->nnames] = p->t->loc;
        p->t++;
        if (p->t->kind == T_COMMA) p->t++;
    }
    if (p->t[-1].kind == T_COMMA) {
        expected(p, "a name after ','");
        return AG_ERR;
    }
    if (p->t->kind != T_EQ) {
        expected(p, "',' or '=' after '%s'", s->names[n - 1]);
        return AG_ERR;
    }
    p->t++;
    return AG_OK;
}

static int parse_stmt(ex_parser *p, ex_stmt *s)
{
    const ex_tok *t = p->t;
    s->loc = t->loc;
    if (t->kind == T_NAME && t->len == 6 && memcmp(t->s, "update", 6) == 0 &&
        t[1].kind == T_NAME) {
        s->kind = EX_UPDATE;
        s->nnames = 1;
        s->names = ar_alloc(p->a, sizeof *s->names);
        s->name_locs = ar_alloc(p->a, sizeof *s->name_locs);
        s->names[0] = ar_strndup(p->a, t[1].s, t[1].len);
        s->name_locs[0] = t[1].loc;
        p->t += 2;
        if (p->t->kind == T_NAME && p->t->len == 5 && memcmp(p->t->s, "every", 5) == 0) {
            p->t++;
            char *end;
            long k = p->t->kind == T_NUM ? strtol(p->t->s, &end, 10) : 0;
            if (p->t->kind != T_NUM || end != p->t->s + p->t->len || k < 1 || k > 1000000) {
                expected(p, "a whole number of steps from 1 to 1000000 after 'every'");
                return AG_ERR;
            }
            s->every = (int)k;
            s->every_loc = p->t->loc;
            p->t++;
        }
        if (p->t->kind != T_COLON) {
            expected(p, "':' after 'update %s%s'", s->names[0], s->every ? " every K" : "");
            return AG_ERR;
        }
        if (!s->every) s->every = 1;
        p->t++;
    } else if (t->kind == T_NAME && (t[1].kind == T_COMMA || t[1].kind == T_EQ)) {
        s->kind = EX_ASSIGN;
        if (parse_targets(p, s)) return AG_ERR;
    } else {
        s->kind = EX_EVAL;
    }
    if (!(s->expr = parse_sum(p))) return AG_ERR;
    return expect_end(p);
}

int ex_parse_stmt(ar_arena *a, const char *text, ag_loc at, ex_stmt **out, ag_error *err)
{
    *out = NULL;
    ex_tok *toks = lex(text, at, err);
    if (!toks) return AG_ERR;
    ex_parser p = {a, err, toks, 0};
    ex_stmt *s = ar_alloc(a, sizeof *s);
    int status = parse_stmt(&p, s);
    free(toks);
    *out = status == AG_OK ? s : NULL;
    return status;
}

int ex_parse_expr(ar_arena *a, const char *text, ag_loc at, ex_node **out, ag_error *err)
{
    *out = NULL;
    ex_tok *toks = lex(text, at, err);
    if (!toks) return AG_ERR;
    ex_parser p = {a, err, toks, 0};
    ex_node *e = parse_sum(&p);
    int status = e ? expect_end(&p) : AG_ERR;
    free(toks);
    *out = status == AG_OK ? e : NULL;
    return status;
}

/* ---- dump ------------------------------------------------------------------------- */

typedef struct ex_out {
    char *buf;
    size_t size, len;
} ex_out;

__attribute__((format(printf, 2, 3))) static void put(ex_out *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->size) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (k > 0) o->len = o->len + (size_t)k < o->size ? o->len + (size_t)k : o->size - 1;
}

static void dump(ex_out *o, const ex_node *n)
{
    static const char *const ops[] = {"+", "-", "*", "/", "**"};
    switch (n->kind) {
    case EX_NUM:
    case EX_NAME: put(o, "%s", n->text); break;
    case EX_NEG:
        put(o, "(neg ");
        dump(o, n->lhs);
        put(o, ")");
        break;
    case EX_BIN:
        put(o, "(%s ", ops[n->op]);
        dump(o, n->lhs);
        put(o, " ");
        dump(o, n->rhs);
        put(o, ")");
        break;
    case EX_CALL:
        put(o, "(%s", n->text);
        for (size_t i = 0; i < n->nargs; i++) {
            put(o, " ");
            if (n->args[i].key) put(o, "%s=", n->args[i].key);
            dump(o, n->args[i].value);
        }
        put(o, ")");
        break;
    }
}

char *ex_dump_expr(const ex_node *n, char *buf, size_t size)
{
    AG_ASSERT(size > 0);
    ex_out o = {buf, size, 0};
    buf[0] = 0;
    dump(&o, n);
    return buf;
}

char *ex_dump_stmt(const ex_stmt *s, char *buf, size_t size)
{
    AG_ASSERT(size > 0);
    ex_out o = {buf, size, 0};
    buf[0] = 0;
    if (s->kind == EX_UPDATE && s->every > 1) put(&o, "(update %s every=%d ", s->names[0], s->every);
    else if (s->kind == EX_UPDATE) put(&o, "(update %s ", s->names[0]);
    if (s->kind == EX_ASSIGN && s->nnames == 1) put(&o, "(= %s ", s->names[0]);
    if (s->kind == EX_ASSIGN && s->nnames > 1) {
        put(&o, "(= (");
        for (size_t i = 0; i < s->nnames; i++) put(&o, i ? " %s" : "%s", s->names[i]);
        put(&o, ") ");
    }
    dump(&o, s->expr);
    if (s->kind != EX_EVAL) put(&o, ")");
    return buf;
}
