/* test_expr.c — the step language: trees, locations, and every error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/expr.h"
#include "tap.h"

static ar_arena arena;
/* Every text below is placed at s.yaml:3:7, as if it were `  - x: TEXT`. */
static const ag_loc AT = {"s.yaml", 3, 7};

static void stmt_is(const char *text, const char *want)
{
    ex_stmt *s;
    ag_error err = {{0}};
    char buf[512];
    if (ex_parse_stmt(&arena, text, AT, &s, &err) != AG_OK) {
        ok(0, "%s", text);
        diag("error: %s", err.msg);
        return;
    }
    is_str(ex_dump_stmt(s, buf, sizeof buf), want, "%s", text);
}

static void expr_is(const char *text, const char *want)
{
    ex_node *n;
    ag_error err = {{0}};
    char buf[512];
    if (ex_parse_expr(&arena, text, AT, &n, &err) != AG_OK) {
        ok(0, "%s", text);
        diag("error: %s", err.msg);
        return;
    }
    is_str(ex_dump_expr(n, buf, sizeof buf), want, "%s", text);
}

static void stmt_fails(const char *text, const char *want)
{
    ex_stmt *s = (ex_stmt *)&s;
    ag_error err = {{0}};
    int rc = ex_parse_stmt(&arena, text, AT, &s, &err);
    char name[256];
    snprintf(name, sizeof name, "%s", text);
    for (char *c = name; (c = strchr(c, '\n'));) *c = '|'; /* one TAP line per check */
    ok(rc == AG_ERR && s == NULL, "'%s' is refused", name);
    is_str(err.msg, want, "  with the message");
}

static void expr_fails(const char *text, const char *want)
{
    ex_node *n;
    ag_error err = {{0}};
    ok(ex_parse_expr(&arena, text, AT, &n, &err) == AG_ERR, "'%s' is refused", text);
    is_str(err.msg, want, "  with the message");
}

/* "x OP 0 OP 0 ..." with n operators. */
static char *chain(const char *op, int n)
{
    size_t len = 1 + (size_t)n * (strlen(op) + 3) + 1;
    char *s = malloc(len), *c = s;
    *c++ = 'x';
    for (int i = 0; i < n; i++) c += sprintf(c, " %s 0", op);
    return s;
}

/* A chain of operators is a tree as deep as the chain is long (whatever walks it recurses
 * once per operator), so it is bounded like brackets, at the operator past the limit. */
static void test_long_chains(void)
{
    static const char *const ops[] = {"+", "*", "-", "/"};
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        char *ok63 = chain(ops[k], 63), *long_one = chain(ops[k], 10000);
        ex_node *n;
        ag_error err = {{0}};
        ok(ex_parse_expr(&arena, ok63, AT, &n, &err) == AG_OK && n->height == 64,
           "x %s 0 ... with 63 operators is a tree 64 deep, and is taken", ops[k]);
        ok(ex_parse_expr(&arena, long_one, AT, &n, &err) == AG_ERR,
           "x %s 0 ... with 10,000 operators is refused", ops[k]);
        /* the 64th operator: x at column 7, then " OP 0" four columns apiece */
        is_str(err.msg, "s.yaml:3:261: expression nested deeper than 64 levels (each operator, "
                        "call and bracket is one); split it into named steps", "  at the 64th operator");
        free(ok63);
        free(long_one);
    }
    ex_stmt *s;
    ag_error err = {{0}};
    char *step = chain("+", 10000);
    memcpy(step, "l", 1);
    char *text = malloc(strlen(step) + 5);
    sprintf(text, "y = %s", step);
    ok(ex_parse_stmt(&arena, text, AT, &s, &err) == AG_ERR, "a step 'y = l + 0 ...' is refused");
    is_str(err.msg, "s.yaml:3:265: expression nested deeper than 64 levels (each operator, call "
                    "and bracket is one); split it into named steps", "  at its 64th operator");
    free(step);
    free(text);
    char nest[512] = "";
    for (int i = 0; i < 32; i++) strcat(nest, "-(a + ");
    strcat(nest, "b");
    for (int i = 0; i < 32; i++) strcat(nest, ")");
    expr_fails(nest, "s.yaml:3:195: expression nested deeper than 64 levels (each operator, call "
                     "and bracket is one); split it into named steps");
}

static void test_precedence(void)
{
    expr_is("1 + 2 * 3", "(+ 1 (* 2 3))");
    expr_is("1 - 2 - 3", "(- (- 1 2) 3)");
    expr_is("a / b * c", "(* (/ a b) c)");
    expr_is("(1 + 2) * 3", "(* (+ 1 2) 3)");
    expr_is("-x * y", "(* (neg x) y)");
    expr_is("-x ** 2", "(neg (** x 2))");
    expr_is("2 ** 3 ** 2", "(** 2 (** 3 2))");
    expr_is("2 ** -1", "(** 2 (neg 1))");
    expr_is("a - -b", "(- a (neg b))");
    expr_is("flatten(pixels / 255 * 2 - 1)", "(flatten (- (* (/ pixels 255) 2) 1))");
}

static void test_numbers(void)
{
    ex_node *n;
    ag_error err;
    ok(ex_parse_expr(&arena, "2e-4", AT, &n, &err) == AG_OK && n->kind == EX_NUM &&
           n->num == 2e-4 && !n->is_int,
       "2e-4 is a float");
    ok(ex_parse_expr(&arena, "100", AT, &n, &err) == AG_OK && n->num == 100 && n->is_int,
       "100 is an integer");
    ok(ex_parse_expr(&arena, ".5", AT, &n, &err) == AG_OK && n->num == 0.5 && !n->is_int,
       ".5 is a float");
    ok(ex_parse_expr(&arena, "1E+3", AT, &n, &err) == AG_OK && n->num == 1000 && !n->is_int,
       "1E+3 is a float");
}

static void test_calls(void)
{
    expr_is("G(randn(64, 100))", "(G (randn 64 100))");
    expr_is("f()", "(f)");
    expr_is("bce(p, x, sum)", "(bce p x sum)");
    expr_is("leaky_relu(h, slope=0.2)", "(leaky_relu h slope=0.2)");
    expr_is("f(a, k = 1 + 2, j=g(x))", "(f a k=(+ 1 2) j=(g x))");
    expr_is("mu + exp(0.5 * logvar) * randn_like(mu)",
            "(+ mu (* (exp (* 0.5 logvar)) (randn_like mu)))");

    ex_node *n;
    ag_error err;
    ex_parse_expr(&arena, "bce(D(x), 1)", AT, &n, &err);
    ok(n->kind == EX_CALL && n->nargs == 2 && strcmp(n->text, "bce") == 0, "a call node");
    ok(n->loc.line == 3 && n->loc.col == 7, "a call is placed at its name");
    ok(n->args[0].value->loc.col == 11, "D is at 3:11");
    ok(n->args[0].value->args[0].value->loc.col == 13, "x is at 3:13");
    ok(n->args[1].value->loc.col == 17, "1 is at 3:17");
    ex_parse_expr(&arena, "a * b", AT, &n, &err);
    ok(n->loc.col == 9, "a binary operation is placed at its operator");
    ex_parse_expr(&arena, "bce(p, x, reduction=sum)", AT, &n, &err);
    ok(n->args[2].key_loc.col == 17 && n->args[2].value->loc.col == 27,
       "a keyword argument has the place of its key and of its value");
}

static void test_statements(void)
{
    stmt_is("z = randn(batch, 100)", "(= z (randn batch 100))");
    stmt_is("mu, logvar = split(encoder(x), 2)", "(= (mu logvar) (split (encoder x) 2))");
    stmt_is("a,b,c=chunk(h, 3)", "(= (a b c) (chunk h 3))");
    stmt_is("loss_D = bce(D(x), 1) + bce(D(detach(fake)), 0)",
            "(= loss_D (+ (bce (D x) 1) (bce (D (detach fake)) 0)))");
    stmt_is("update opt_D: loss_D", "(update opt_D loss_D)");
    stmt_is("update opt: bce(decoder(z), x, sum) + kl_normal(mu, logvar)",
            "(update opt (+ (bce (decoder z) x sum) (kl_normal mu logvar)))");
    stmt_is("G(randn(64, 100))", "(G (randn 64 100))");
    stmt_is("update", "update");
    stmt_is("update = 1", "(= update 1)");
    stmt_is("update(x)", "(update x)");
    stmt_is("update opt_G every 5: loss_G", "(update opt_G every=5 loss_G)");
    stmt_is("update opt_G every 1: loss_G", "(update opt_G loss_G)");
    stmt_is("update every: loss", "(update every loss)");

    ex_stmt *s;
    ag_error err;
    ex_parse_stmt(&arena, "mu, logvar = split(h, 2)", AT, &s, &err);
    ok(s->kind == EX_ASSIGN && s->nnames == 2 && strcmp(s->names[1], "logvar") == 0 &&
           s->name_locs[1].col == 11,
       "tuple targets have names and places");
    ex_parse_stmt(&arena, "update opt_G: loss_G", AT, &s, &err);
    ok(s->kind == EX_UPDATE && strcmp(s->names[0], "opt_G") == 0 && s->name_locs[0].col == 14 &&
           s->expr->kind == EX_NAME && s->expr->loc.col == 21,
       "update names its optimizer and its loss");
    ok(s->every == 1, "an update without 'every' runs on every step");
    ex_parse_stmt(&arena, "update opt_G every 5: loss_G", AT, &s, &err);
    ok(s->every == 5 && s->every_loc.col == 26, "'every K' and its place");
}

/* A plain YAML scalar that continues on the next line is handed over as written. */
static void test_lines(void)
{
    ex_stmt *s;
    ag_error err;
    const char *text = "loss = bce(decoder(z), x, sum)\n      + kl_normal(mu, logvar)";
    ok(ex_parse_stmt(&arena, text, AT, &s, &err) == AG_OK, "a statement over two lines");
    ok(s->expr->loc.line == 4 && s->expr->loc.col == 7, "'+' is at 4:7");
    ok(s->expr->rhs->loc.line == 4 && s->expr->rhs->loc.col == 9, "kl_normal is at 4:9");
    stmt_fails("z = f(x,\n  y z)", "s.yaml:4:5: expected ',' or ')' after an argument of 'f', got 'z'");
}

static void test_errors(void)
{
    stmt_fails("bce(p x)", "s.yaml:3:13: expected ',' or ')' after an argument of 'bce', got 'x'");
    stmt_fails("z = randn(batch, 100", "s.yaml:3:27: expected ',' or ')' after an argument of 'randn', got end of text");
    stmt_fails("z = (a + b", "s.yaml:3:17: expected ')' to close '(' at 3:11, got end of text");
    stmt_fails("z = (a + b]", "s.yaml:3:17: unexpected character ']'");
    stmt_fails("z = ", "s.yaml:3:11: expected an expression, got end of text");
    stmt_fails("z = a +", "s.yaml:3:14: expected an expression, got end of text");
    stmt_fails("z = * a", "s.yaml:3:11: expected an expression, got '*'");
    stmt_fails("z = f(a,)", "s.yaml:3:15: expected an expression, got ')'");
    stmt_fails("z = f(k=1, a)", "s.yaml:3:18: positional argument after keyword arguments");
    stmt_fails("z = f(k=1, k=2)", "s.yaml:3:18: keyword argument 'k' given twice");
    stmt_fails("z = 1e", "s.yaml:3:11: malformed number '1e'");
    stmt_fails("z = 2e-4x", "s.yaml:3:11: malformed number '2e-4x'");
    stmt_fails("z = 1.2.3 + a", "s.yaml:3:11: malformed number '1.2.3'");
    stmt_fails("z = 1e999", "s.yaml:3:11: number out of range '1e999'");
    stmt_fails("z = a @ b", "s.yaml:3:13: unexpected character '@'");
    stmt_fails("z = a \xc3\xa9", "s.yaml:3:13: unexpected character '\xc3\xa9'");
    stmt_fails("z = \xc3\xa9 @", "s.yaml:3:11: unexpected character '\xc3\xa9'");
    stmt_fails("z = a\x01", "s.yaml:3:12: unexpected control character 0x01");
    stmt_fails("update opt_D loss_D", "s.yaml:3:20: expected ':' after 'update opt_D', got 'loss_D'");
    stmt_fails("update opt_D:", "s.yaml:3:20: expected an expression, got end of text");
    stmt_fails("update opt_G every 0: loss_G",
               "s.yaml:3:26: expected a whole number of steps from 1 to 1000000 after 'every', got '0'");
    stmt_fails("update opt_G every 2.5: loss_G",
               "s.yaml:3:26: expected a whole number of steps from 1 to 1000000 after 'every', got '2.5'");
    stmt_fails("update opt_G every k: loss_G",
               "s.yaml:3:26: expected a whole number of steps from 1 to 1000000 after 'every', got 'k'");
    stmt_fails("update opt_G every: loss_G",
               "s.yaml:3:25: expected a whole number of steps from 1 to 1000000 after 'every', got ':'");
    stmt_fails("update opt_G every 5 loss_G", "s.yaml:3:28: expected ':' after 'update opt_G every K', got 'loss_G'");
    stmt_fails("mu, = split(h, 2)", "s.yaml:3:11: expected a name after ',', got '='");
    stmt_fails("mu, 2 = split(h, 2)", "s.yaml:3:11: expected a name after ',', got '2'");
    stmt_fails("mu, logvar split(h, 2)", "s.yaml:3:18: expected ',' or '=' after 'logvar', got 'split'");
    stmt_fails("f(x) = 1", "s.yaml:3:12: only names can be assigned to, not an expression");
    stmt_fails("loss bce(x)", "s.yaml:3:12: unexpected 'bce' after the expression");
    stmt_fails("z = a b", "s.yaml:3:13: unexpected 'b' after the expression");
    stmt_fails("z = (a)(b)", "s.yaml:3:14: unexpected '(' after the expression");
    stmt_fails("", "s.yaml:3:7: expected an expression, got end of text");
    expr_fails("x = 1", "s.yaml:3:9: only names can be assigned to, not an expression");
    expr_fails("update opt: l", "s.yaml:3:14: unexpected 'opt' after the expression");

    char deep[256] = {0};
    memset(deep, '(', 64);
    deep[64] = 'x';
    memset(deep + 65, ')', 64);
    expr_fails(deep, "s.yaml:3:71: expression nested deeper than 64 levels (each operator, call "
                     "and bracket is one); split it into named steps");
    deep[63] = 'x';
    memset(deep + 64, ')', 63);
    deep[127] = 0;
    expr_is(deep, "x");
    test_long_chains();
    char many[256] = "f(";
    for (int i = 0; i < 33; i++) strcat(many, "a,");
    strcat(many, "a)");
    expr_fails(many, "s.yaml:3:73: too many arguments to 'f' (more than 32)");
}

int main(void)
{
    ar_init(&arena, 0);
    test_precedence();
    test_numbers();
    test_calls();
    test_statements();
    test_lines();
    test_errors();
    ar_free(&arena);
    return tap_done();
}
