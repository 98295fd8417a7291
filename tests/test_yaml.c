/* test_yaml.c — the spec tree, its places, the typed getters, "did you mean", and the
 * exact message of every refusal. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/expr.h"
#include "aigc/suggest.h"
#include "aigc/yaml.h"
#include "tap.h"
#include "tmpdir.h"

static ar_arena arena;

#define LBRACKETS "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
#define RBRACKETS "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"

static const char SPEC[] =
    "name: gan\n"                                   /* 1 */
    "data:\n"                                       /* 2 */
    "  batch: 64\n"                                 /* 3 */
    "  shuffle: true\n"                             /* 4 */
    "  x: flatten(pixels / 255 * 2 - 1)   # [-1, 1]\n" /* 5 */
    "models:\n"                                     /* 6 */
    "  G:\n"                                        /* 7 */
    "    in: 100\n"                                 /* 8 */
    "    layers: [linear 256, relu]\n"              /* 9 */
    "train:\n"                                      /* 10 */
    "  optimizers:\n"                               /* 11 */
    "    opt_D: {type: adam, lr: 2e-4, params: D}\n" /* 12 */
    "  step:\n"                                     /* 13 */
    "    - z = randn(batch, 100)\n"                 /* 14 */
    "    - loss = bce(decoder(z), x, sum)\n"        /* 15 */
    "        + kl_normal(mu, logvar)\n"             /* 16 */
    "    - 'update opt_D: loss_D'\n";               /* 17 */

static const yt_node *load(const char *text, ag_error *err)
{
    static yt_doc doc;
    if (yt_load_string(&doc, &arena, "s.yaml", text, strlen(text), err) != AG_OK) return NULL;
    return doc.root;
}

static void refused(const char *text, const char *want, const char *what)
{
    ag_error err = {{0}};
    ok(load(text, &err) == NULL, "%s is refused", what);
    is_str(err.msg, want, "  with the message");
}

static int at(const yt_node *n, int line, int col)
{
    if (n && n->loc.line == line && n->loc.col == col && strcmp(n->loc.file, "s.yaml") == 0)
        return 1;
    if (n) diag("at %d:%d", n->loc.line, n->loc.col);
    return 0;
}

static void test_tree(void)
{
    ag_error err = {{0}};
    const yt_node *root = load(SPEC, &err);
    if (!ok(root != NULL, "the spec loads")) {
        diag("%s", err.msg);
        return;
    }
    ok(root->kind == YT_MAP && root->n == 4 && at(root, 1, 1), "root: a mapping of 4 at 1:1");
    ok(strcmp(root->pairs[3].key->text, "train") == 0 && at(root->pairs[3].key, 10, 1),
       "keys keep their order and place");

    const yt_node *data = yt_get(root, "data");
    ok(data->kind == YT_MAP && at(data, 3, 3), "a block mapping is placed at its first key");
    const yt_node *batch = yt_get(data, "batch");
    ok(batch->kind == YT_SCALAR && strcmp(batch->text, "64") == 0 && !batch->quoted &&
           at(batch, 3, 10),
       "batch: '64' at 3:10");
    const yt_node *x = yt_get(data, "x");
    ok(strcmp(x->text, "flatten(pixels / 255 * 2 - 1)") == 0 && at(x, 5, 6),
       "a comment is not part of a scalar");

    const yt_node *layers = yt_get(yt_get(yt_get(root, "models"), "G"), "layers");
    ok(layers->kind == YT_SEQ && layers->n == 2 && at(layers, 9, 13), "flow list at its '['");
    ok(strcmp(layers->items[0]->text, "linear 256") == 0 && at(layers->items[0], 9, 14),
       "'linear 256' is one scalar at 9:14");
    ok(strcmp(layers->items[1]->text, "relu") == 0 && at(layers->items[1], 9, 26),
       "'relu' at 9:26");

    const yt_node *train = yt_get(root, "train");
    const yt_node *opt = yt_get(yt_get(train, "optimizers"), "opt_D");
    ok(opt->kind == YT_MAP && opt->n == 3 && at(opt, 12, 12), "flow mapping at its '{'");
    ok(at(opt->pairs[1].key, 12, 25) && at(opt->pairs[1].value, 12, 29), "lr: 2e-4 at 12:25/12:29");
    ok(yt_get(opt, "missing") == NULL, "yt_get of a missing key is NULL");

    const yt_node *step = yt_get(train, "step");
    ok(step->kind == YT_SEQ && step->n == 3 && at(step, 14, 5), "block list at its first '-'");
    ok(at(step->items[0], 14, 7), "first step at 14:7");
    ok(step->items[2]->quoted && strcmp(step->items[2]->text, "update opt_D: loss_D") == 0,
       "a quoted scalar keeps its value and says it was quoted");
}

/* The expression parser reads what yt_expr_text gives, with exact places even across
 * lines and inside quotes. */
static void test_expr_text(void)
{
    ag_error err = {{0}};
    const yt_node *root = load(SPEC, &err);
    const yt_node *step = yt_get(yt_get(root, "train"), "step");

    const yt_node *two = step->items[1];
    ok(strcmp(two->text, "loss = bce(decoder(z), x, sum) + kl_normal(mu, logvar)") == 0,
       "a multi-line plain scalar is folded by YAML");
    ag_loc loc;
    const char *text = yt_expr_text(two, &loc);
    is_str(text, "loss = bce(decoder(z), x, sum)\n        + kl_normal(mu, logvar)",
           "yt_expr_text gives it as written");
    ex_stmt *s;
    ok(ex_parse_stmt(&arena, text, loc, &s, &err) == AG_OK && s->expr->loc.line == 16 &&
           s->expr->loc.col == 9 && s->expr->rhs->loc.col == 11,
       "so '+' is placed at 16:9 and kl_normal at 16:11");

    text = yt_expr_text(step->items[2], &loc);
    ok(ex_parse_stmt(&arena, text, loc, &s, &err) == AG_OK && s->kind == EX_UPDATE &&
           s->name_locs[0].line == 17 && s->name_locs[0].col == 15,
       "inside quotes, opt_D is placed at 17:15");

    root = load("step: z = f(x,\n  y z)\n", &err);
    text = yt_expr_text(yt_get(root, "step"), &loc);
    ok(ex_parse_stmt(&arena, text, loc, &s, &err) == AG_ERR, "a bad multi-line statement");
    is_str(err.msg, "s.yaml:2:5: expected ',' or ')' after an argument of 'f', got 'z'",
           "  points at its second line");

    root = load("step: z = f(x,\r\n  y z)\r\n", &err);
    text = yt_expr_text(yt_get(root, "step"), &loc);
    ex_parse_stmt(&arena, text, loc, &s, &err);
    is_str(err.msg, "s.yaml:2:5: expected ',' or ')' after an argument of 'f', got 'z'",
           "  with CRLF line ends too");
}

/* text_col: where the value is exactly what is written on one line, the column of its
 * first character; otherwise 0. */
static void test_text_col(void)
{
    ag_error err = {{0}};
    const yt_node *root = load("a: linear 10\n"
                               "b: 'made 64'\n"
                               "c: \"made\\t64\"\n"
                               "d: 'it''s'\n"
                               "e: one\n  two\n"
                               "f: |\n  block\n"
                               "g: [x, \"y z\"]\n",
                               &err);
    ok(yt_get(root, "a")->text_col == 4, "text_col: a plain scalar's first character");
    ok(yt_get(root, "b")->text_col == 5, "text_col: a quoted one's, one in from the quote");
    ok(yt_get(root, "c")->text_col == 0, "text_col: 0 for a quoted scalar with an escape");
    ok(yt_get(root, "d")->text_col == 0, "text_col: 0 for a doubled quote");
    ok(yt_get(root, "e")->text_col == 0, "text_col: 0 for a plain scalar over two lines");
    ok(yt_get(root, "f")->text_col == 0, "text_col: 0 for a block scalar");
    const yt_node *g = yt_get(root, "g");
    ok(g->items[0]->text_col == 5 && g->items[1]->text_col == 9, "text_col: items of a flow list");
}

static void test_refusals(void)
{
    refused("a: 1\nb:\n  lr: 1\n  beta: 2\n  lr: 3\n",
            "s.yaml:5:3: duplicate key 'lr' (first at 3:3)", "a duplicate key");
    refused("{type: adam, lr: 1, lr: 2}", "s.yaml:1:21: duplicate key 'lr' (first at 1:14)",
            "a duplicate key in flow style");
    refused("? [a, b]\n: 1\n", "s.yaml:1:3: a mapping key must be a plain value, not a list",
            "a list as a key");
    refused("a: 1\nb: [1, 2\nc: 3",
            "s.yaml:3:2: did not find expected ',' or ']' (while parsing a flow sequence at 2:4)",
            "an unclosed flow list");
    refused("a: 1\n  b: 2\n",
            "s.yaml:2:4: mapping values are not allowed in this context; check the indentation of "
            "line 2: deeper than line 1, it continues that line's value",
            "a bad indent");
    refused("a: \"x\xff\"\n",
            "s.yaml:1:6: byte 0xFF is not UTF-8: a spec must be UTF-8 text (was the file saved as "
            "Latin-1?)",
            "invalid UTF-8");
    refused("a: caf\xe9s\n",
            "s.yaml:1:7: byte 0xE9 is not UTF-8: a spec must be UTF-8 text (was the file saved as "
            "Latin-1?)",
            "a Latin-1 letter is named, not the letter after it");
    refused("a: \xc3\xa9t\xc3\xa9 \xed\xa0\x80\n",
            "s.yaml:1:8: byte 0xED is not UTF-8: a spec must be UTF-8 text (was the file saved as "
            "Latin-1?)",
            "a UTF-16 surrogate written as UTF-8, after two good letters");
    refused("a: x\x01\n", "s.yaml:1:5: control characters are not allowed (byte 0x01)",
            "a control character: libyaml's message");
    refused("a: 1\n---\nb: 2\n",
            "s.yaml:2:1: a second document; a spec is a single YAML document",
            "a second document");
    refused("", "s.yaml: empty file; expected a YAML document", "an empty file");
    refused("# only a comment\n\n", "s.yaml: empty file; expected a YAML document",
            "a file of comments");
    refused("base: &adam {type: adam}\nopt: *adam\n",
            "s.yaml:1:7: anchors are not supported ('&adam'); write the value out", "an anchor");
    refused("opt: *adam\n", "s.yaml:1:6: aliases are not supported ('*adam'); write the value out",
            "an alias");
    refused("a: &x [*x]\n", "s.yaml:1:4: anchors are not supported ('&x'); write the value out",
            "an alias cycle (refused at its anchor)");
    refused("a: !!str 5\n", "s.yaml:1:4: tags are not supported ('tag:yaml.org,2002:str')",
            "a tag");

    /* The root mapping is the first level. */
    char deep[256];
    snprintf(deep, sizeof deep, "a: %.*s1%.*s", 63, LBRACKETS, 63, RBRACKETS);
    ag_error err = {{0}};
    ok(load(deep, &err) != NULL, "64 levels of nesting load");
    snprintf(deep, sizeof deep, "a: %.*s1%.*s", 64, LBRACKETS, 64, RBRACKETS);
    refused(deep, "s.yaml:1:67: nested deeper than 64 levels", "65 levels of nesting");
}

static const yt_node *value(const char *text)
{
    ag_error err;
    const yt_node *root = load(text, &err);
    AG_ASSERT(root);
    return root->pairs[0].value;
}

static void int_is(const char *text, long min, long max, const char *want)
{
    ag_error err = {{0}};
    long v = -12345;
    int rc = yt_int(value(text), "epochs", min, max, &v, &err);
    char got[sizeof err.msg];
    snprintf(got, sizeof got, "%s", rc == AG_OK ? "" : err.msg);
    if (rc == AG_OK) snprintf(got, sizeof got, "%ld", v);
    is_str(got, want, "yt_int '%s'", text);
}

static void float_is(const char *text, double min, double max, const char *want)
{
    ag_error err = {{0}};
    double v = -12345;
    int rc = yt_float(value(text), "lr", min, max, &v, &err);
    char got[sizeof err.msg];
    snprintf(got, sizeof got, "%s", rc == AG_OK ? "" : err.msg);
    if (rc == AG_OK) snprintf(got, sizeof got, "%g", v);
    is_str(got, want, "yt_float '%s'", text);
}

static void test_getters(void)
{
    int_is("e: 10", 1, 1000, "10");
    int_is("e: -3", LONG_MIN, LONG_MAX, "-3");
    int_is("e: 10.5", 1, 1000, "s.yaml:1:4: 'epochs' must be an integer in [1, 1000], got '10.5'");
    int_is("e: 0", 1, 1000, "s.yaml:1:4: 'epochs' must be an integer in [1, 1000], got '0'");
    int_is("e: 0", 1, LONG_MAX, "s.yaml:1:4: 'epochs' must be an integer >= 1, got '0'");
    int_is("e: 5", LONG_MIN, 4, "s.yaml:1:4: 'epochs' must be an integer <= 4, got '5'");
    int_is("e: 99999999999999999999", LONG_MIN, LONG_MAX,
           "s.yaml:1:4: 'epochs' must be an integer, got '99999999999999999999'");
    int_is("e: 1e3", 1, 1000, "s.yaml:1:4: 'epochs' must be an integer in [1, 1000], got '1e3'");
    int_is("e: 0x10", 1, 1000, "s.yaml:1:4: 'epochs' must be an integer in [1, 1000], got '0x10'");
    int_is("e: \"10\"", 1, 1000,
           "s.yaml:1:4: 'epochs' must be an integer in [1, 1000], got the quoted string '10'");
    int_is("e:", 1, 1000, "s.yaml:1:3: 'epochs' must be an integer in [1, 1000], got an empty value");
    int_is("e: {a: 1}", 1, 1000, "s.yaml:1:4: 'epochs' must be an integer in [1, 1000], got a mapping");
    int_is("e: [1]", 1, 1000, "s.yaml:1:4: 'epochs' must be an integer in [1, 1000], got a list");

    float_is("lr: 2e-4", 0, INFINITY, "0.0002");
    float_is("lr: .5", 0, 1, "0.5");
    float_is("lr: -1.5E+2", -INFINITY, INFINITY, "-150");
    float_is("lr: 1e", 0, INFINITY, "s.yaml:1:5: 'lr' must be a number >= 0, got '1e'");
    float_is("lr: 2e-4x", 0, INFINITY, "s.yaml:1:5: 'lr' must be a number >= 0, got '2e-4x'");
    float_is("lr: 1.5", 0, 1, "s.yaml:1:5: 'lr' must be a number in [0, 1], got '1.5'");
    float_is("lr: 2", -INFINITY, 1, "s.yaml:1:5: 'lr' must be a number <= 1, got '2'");
    float_is("lr: nan", -INFINITY, INFINITY, "s.yaml:1:5: 'lr' must be a number, got 'nan'");
    float_is("lr: .inf", 0, 1, "s.yaml:1:5: 'lr' must be a number in [0, 1], got '.inf'");
    float_is("lr: .inf", 0, INFINITY, "inf");
    float_is("lr: -inf", -INFINITY, 0, "-inf");
    float_is("lr: 1e999", 0, INFINITY, "s.yaml:1:5: 'lr' must be a number >= 0, got '1e999'");
    float_is("lr: 0x1p3", 0, INFINITY, "s.yaml:1:5: 'lr' must be a number >= 0, got '0x1p3'");
    float_is("lr: infinity", 0, INFINITY, "s.yaml:1:5: 'lr' must be a number >= 0, got 'infinity'");
    float_is("lr: '0.1'", 0, 1, "s.yaml:1:5: 'lr' must be a number in [0, 1], got the quoted string '0.1'");

    ag_error err = {{0}};
    int b = -1;
    ok(yt_bool(value("s: true"), "shuffle", &b, &err) == AG_OK && b == 1, "true");
    ok(yt_bool(value("s: False"), "shuffle", &b, &err) == AG_OK && b == 0, "False");
    ok(yt_bool(value("s: yes"), "shuffle", &b, &err) == AG_ERR, "yes is not a boolean");
    is_str(err.msg, "s.yaml:1:4: 'shuffle' must be true or false, got 'yes'", "  with the message");

    const char *s = NULL;
    ok(yt_str(value("n: gan"), "name", &s, &err) == AG_OK && strcmp(s, "gan") == 0, "a string");
    ok(yt_str(value("n: ''"), "name", &s, &err) == AG_OK && strcmp(s, "") == 0,
       "a quoted empty string is a string");
    ok(yt_str(value("n: ~x"), "name", &s, &err) == AG_OK && strcmp(s, "~x") == 0, "~x");
    ok(yt_str(value("n:"), "name", &s, &err) == AG_ERR, "nothing is not a string");
    is_str(err.msg, "s.yaml:1:3: 'name' must be a string, got an empty value", "  with the message");
    char longer[128];
    snprintf(longer, sizeof longer, "n: [%s]", "a");
    ok(yt_str(value(longer), "name", &s, &err) == AG_ERR, "a list is not a string");
    is_str(err.msg, "s.yaml:1:4: 'name' must be a string, got a list", "  with the message");
    yt_int(value("e: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"), "e", 0, 9, &(long){0}, &err);
    is_str(err.msg, "s.yaml:1:4: 'e' must be an integer in [0, 9], got 'abcdefghijklmnopqrstuvwxyzabcdefghijk...'",
           "a long value is shortened in the message");

    const yt_node *m = load("train:\n  epochs: 3\n", &err);
    ok(yt_want(yt_get(m, "train"), YT_MAP, "train", &err) == AG_OK, "yt_want: a mapping");
    ok(yt_want(yt_get(m, "train"), YT_SEQ, "train", &err) == AG_ERR, "yt_want: not a list");
    is_str(err.msg, "s.yaml:2:3: 'train' must be a list, got a mapping", "  with the message");
    ok(yt_want(value("a:"), YT_SCALAR, "a", &err) == AG_ERR, "yt_want: empty is not a value");
    is_str(err.msg, "s.yaml:1:3: 'a' must be a single value, got an empty value", "  with the message");
    ok(yt_need(yt_get(m, "train"), "epochs", &err) != NULL, "yt_need finds a key");
    ok(yt_need(yt_get(m, "train"), "step", &err) == NULL, "yt_need of a missing key");
    is_str(err.msg, "s.yaml:2:3: missing key 'step'", "  with the message");
}

static void test_check_keys(void)
{
    static const char *const train_keys[] = {"epochs", "optimizers", "step", "log", NULL};
    ag_error err = {{0}};
    const yt_node *root = load("train:\n  step: []\n  epoch: 10\n", &err);
    const yt_node *train = yt_get(root, "train");
    ok(yt_check_keys(train, train_keys, "train", &err) == AG_ERR, "an unknown key");
    is_str(err.msg, "s.yaml:3:3: unknown key 'epoch' in 'train'; did you mean 'epochs'?",
           "  with a suggestion");
    root = load("steps: 1\nwhatever: 2\n", &err);
    ok(yt_check_keys(root, train_keys, NULL, &err) == AG_ERR, "an unknown top-level key");
    is_str(err.msg, "s.yaml:1:1: unknown key 'steps'; did you mean 'step'?", "  without a place name");
    root = load("step: 1\nwhatever: 2\n", &err);
    yt_check_keys(root, train_keys, NULL, &err);
    is_str(err.msg, "s.yaml:2:1: unknown key 'whatever'", "  and without a suggestion when none is close");
    root = load("step: 1\nlog: 2\n", &err);
    ok(yt_check_keys(root, train_keys, NULL, &err) == AG_OK, "known keys pass");
}

static void test_suggest(void)
{
    static const char *const words[] = {"linear", "relu", "leaky_relu", "sigmoid", "tanh", NULL};
    ok(sg_distance("kitten", "sitting") == 3, "kitten/sitting: 3");
    ok(sg_distance("btach", "batch") == 1, "a swap costs 1");
    ok(sg_distance("", "abc") == 3, "from nothing: the length");
    ok(sg_distance("ADAM", "adam") == 0, "case is ignored");
    is_str(sg_suggest("liner", words), "linear", "liner -> linear");
    is_str(sg_suggest("Relu", words), "relu", "Relu -> relu");
    is_str(sg_suggest("leaky_rleu", words), "leaky_relu", "leaky_rleu -> leaky_relu");
    is_str(sg_suggest("sigmiod", words), "sigmoid", "sigmiod -> sigmoid");
    ok(sg_suggest("conv2d", words) == NULL, "conv2d: nothing close");
    ok(sg_suggest("x", (const char *const[]){"y", "xy", NULL}) == NULL, "x suggests neither y nor xy");
    ok(sg_suggest("relu", words) == NULL, "an exact match is not a suggestion");
    is_str(sg_suggest("tan", words), "tanh", "tan -> tanh");

    sg_best b;
    char hint[64];
    sg_init(&b, "lr");
    sg_offer(&b, "betas");
    sg_offer(&b, "lx");
    sg_offer(&b, "lt");
    is_str(sg_hint(&b, hint, sizeof hint), "; did you mean 'lx'?", "first of equals wins");
    sg_init(&b, "zzz");
    is_str(sg_hint(&b, hint, sizeof hint), "", "no hint when nothing is close");
}

static void test_annotate(void)
{
    yt_doc doc;
    ag_error err = {{0}};
    const char *text = "train:\n  opt: {type: adam,\n\tlr: 2e-4x}\n";
    ok(yt_load_string(&doc, &arena, "s.yaml", text, strlen(text), &err) == AG_OK, "loads");
    const yt_node *lr = yt_get(yt_get(yt_get(doc.root, "train"), "opt"), "lr");
    double v;
    yt_float(lr, "lr", 0, INFINITY, &v, &err);
    yt_annotate(&err, &doc);
    is_str(err.msg,
           "s.yaml:3:6: 'lr' must be a number >= 0, got '2e-4x'\n"
           "  3 | \tlr: 2e-4x}\n"
           "    | \t    ^",
           "the line and a caret (a tab stays a tab)");

    text = "a: 1\nb: [1, 2\nc: 3";
    ok(yt_load_string(&doc, &arena, "s.yaml", text, strlen(text), &err) == AG_ERR, "fails");
    yt_annotate(&err, &doc);
    is_str(err.msg,
           "s.yaml:3:2: did not find expected ',' or ']' (while parsing a flow sequence at 2:4)\n"
           "  3 | c: 3\n"
           "    |  ^",
           "a failed load is annotated too");

    text = "x: '\xc3\xa9t\xc3\xa9'\ny: 1\nz: 2\nw: 3\nv: 4\nu: 5\nt: 6\ns: 7\nr: 8\nq: [9, 10, é, 1]\n";
    ok(yt_load_string(&doc, &arena, "s.yaml", text, strlen(text), &err) == AG_OK, "loads");
    const yt_node *q = yt_get(doc.root, "q");
    yt_int(q->items[2], "q", 0, 10, &(long){0}, &err);
    yt_annotate(&err, &doc);
    is_str(err.msg,
           "s.yaml:10:12: 'q' must be an integer in [0, 10], got '\xc3\xa9'\n"
           "  10 | q: [9, 10, \xc3\xa9, 1]\n"
           "     |            ^",
           "two-digit line numbers");

    strcpy(err.msg, "other.yaml:1:1: something");
    yt_annotate(&err, &doc);
    is_str(err.msg, "other.yaml:1:1: something", "another file's message is left alone");
    strcpy(err.msg, "s.yaml: empty file; expected a YAML document");
    yt_annotate(&err, &doc);
    is_str(err.msg, "s.yaml: empty file; expected a YAML document", "a message without a place too");
}

static void test_file(void)
{
    yt_doc doc;
    ag_error err = {{0}};
    ok(yt_load_file(&doc, &arena, "/nonexistent/spec.yaml", &err) == AG_ERR, "a missing file");
    is_str(err.msg, "/nonexistent/spec.yaml: cannot open: No such file or directory", "  with the message");

    char path[] = "/tmp/test_yaml_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("\xEF\xBB\xBFname: gan\nseed: 0\n", f);
    fclose(f);
    ok(yt_load_file(&doc, &arena, path, &err) == AG_OK && doc.root->n == 2, "a file with a BOM loads");
    const yt_node *seed = yt_get(doc.root, "seed");
    ok(seed->loc.line == 2 && seed->loc.col == 7 && strcmp(seed->loc.file, path) == 0,
       "its nodes carry the path");
    const yt_node *name = yt_get(doc.root, "name");
    yt_int(name, "name", 0, 1, &(long){0}, &err);
    yt_annotate(&err, &doc);
    char want[256];
    snprintf(want, sizeof want,
             "%s:1:7: 'name' must be an integer in [0, 1], got 'gan'\n  1 | name: gan\n    |       ^",
             path);
    is_str(err.msg, want, "the byte order mark is not part of the excerpt");
    unlink(path);
}

/* Text made of head, then n copies of item, then tail. */
static char *repeat(const char *head, const char *item, size_t n, const char *tail)
{
    size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
    char *s = malloc(hl + n * il + tl + 1), *c = s;
    memcpy(c, head, hl);
    c += hl;
    for (size_t i = 0; i < n; i++, c += il) memcpy(c, item, il);
    memcpy(c, tail, tl + 1);
    return s;
}

/* Large specs load in time linear in their size (no timing here: the sizes are those
 * that took seconds to minutes when a long line or a large mapping was quadratic), and
 * the limits refuse the rest with their message. */
static void test_large(void)
{
    ag_error err = {{0}};
    char *items = repeat("x: [", "1, ", 40000, "1]\n");
    const yt_node *root = load(items, &err);
    ok(root && yt_get(root, "x")->n == 40001, "40,001 items on one line load");
    ok(root && at(yt_get(root, "x")->items[40000], 1, 120005), "  the last one at its column");
    free(items);

    char *keys = malloc(40000 * 16 + 16), *c = keys;
    for (int i = 0; i < 40000; i++) c += sprintf(c, "k%d: %d\n", i, i);
    strcpy(c, "k39999: 0\n");
    refused(keys, "s.yaml:40001:1: duplicate key 'k39999' (first at 40000:1)",
            "40,000 keys and the last one again");
    *c = 0;
    root = load(keys, &err);
    ok(root && root->n == 40000 && strcmp(yt_get(root, "k12345")->text, "12345") == 0,
       "40,000 distinct keys load");
    free(keys);

    refused("a: {k: 1, b: {k: 2, c: {k: 3}}, k: 4}\n", "s.yaml:1:33: duplicate key 'k' (first at 1:5)",
            "a key again after nested mappings that have it too");
    root = load("- {k: 1}\n- {k: 2}\n- a: {k: 3}\n  k: 4\n", &err);
    ok(root && root->n == 3, "the same key in sibling and nested mappings is no duplicate");

    char *many = repeat("x: [", "1,", YT_MAX_NODES, "1]\n");
    char want[128];
    snprintf(want, sizeof want, "s.yaml:1:%d: more than %d values in one spec; a spec is not this large",
             2 * (YT_MAX_NODES - 3) + 5, YT_MAX_NODES); /* the map, 'x' and the list come first */
    refused(many, want, "a list of as many values as the limit");
    free(many);

    yt_doc doc;
    tmp_open("yaml");
    FILE *f = fopen(in_tmp("big.yaml"), "w");
    ok(f && fseek(f, 50l << 20, SEEK_SET) == 0 && fputc('\n', f) == '\n' && fclose(f) == 0,
       "a 50 MB spec is made");
    ok(yt_load_file(&doc, &arena, in_tmp("big.yaml"), &err) == AG_ERR, "a 50 MB spec is refused");
    snprintf(want, sizeof want, "%s: 52428801 bytes, more than the 16 MiB a spec may have",
             in_tmp("big.yaml"));
    is_str(err.msg, want, "  by its size, before it is read");
    ok(mkfifo(in_tmp("fifo.yaml"), 0600) == 0, "a FIFO is made");
    ok(yt_load_file(&doc, &arena, in_tmp("fifo.yaml"), &err) == AG_ERR,
       "a FIFO as the spec is refused (without blocking for a writer)");
    snprintf(want, sizeof want, "%s: cannot open: not a regular file (a FIFO)", in_tmp("fifo.yaml"));
    is_str(err.msg, want, "  with the message");
    ok(yt_load_file(&doc, &arena, tmpdir, &err) == AG_ERR, "a directory as the spec is refused");
    snprintf(want, sizeof want, "%s: cannot open: not a regular file (a directory)", tmpdir);
    is_str(err.msg, want, "  with the message");
    tmp_close();
}

/* libyaml's words for a misindented line, and the line they come with. */
static void test_indentation(void)
{
    refused("name: x\ntrain:\n  epochs: 1\n   lr: 3\n",
            "s.yaml:4:6: mapping values are not allowed in this context; check the indentation of "
            "line 4: deeper than line 3, it continues that line's value",
            "a key indented deeper than the one above");
    refused("train:\n  epochs: 1\n  # a comment\n\n    lr: 3\n",
            "s.yaml:5:5: did not find expected key (while parsing a block mapping at 2:3); check the "
            "indentation of line 5: the mapping at 2:3 has its keys at column 3",
            "  after a comment and a blank line");
    refused("name: x: y\n", "s.yaml:1:8: mapping values are not allowed in this context",
            "a second colon on one line (no hint: not an indentation)");
    refused("name: x\ntrain:\n  epochs: 1\n lr: 3\n",
            "s.yaml:4:2: did not find expected key (while parsing a block mapping at 1:1); check the "
            "indentation of line 4: the mapping at 1:1 has its keys at column 1",
            "a key between two levels");
    refused("train:\n  step:\n    - a = 1\n   - b = 2\n",
            "s.yaml:4:4: did not find expected key (while parsing a block mapping at 2:3); check the "
            "indentation of line 4: the mapping at 2:3 has its keys at column 3",
            "a list item out of line");
}

int main(void)
{
    ar_init(&arena, 0);
    test_tree();
    test_expr_text();
    test_text_col();
    test_refusals();
    test_getters();
    test_check_keys();
    test_suggest();
    test_annotate();
    test_file();
    test_large();
    test_indentation();
    ar_free(&arena);
    return tap_done();
}
