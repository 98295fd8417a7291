/*
 * test_args.c — the argument binder (aigc/args.h) that layers, builtins and
 * initializers share: arguments placed by position and by name, the messages for a
 * name that does not exist, one given twice, too many and a required one missing, and
 * the checks of a value against its parameter.
 */
#include <math.h>
#include <string.h>

#include "aigc/args.h"
#include "tap.h"

static const char *const modes[] = {"even", "random", NULL};
static const ab_param conv[] = {
    {.name = "out", .lo = 1, .hi = 64, .whole = 1},
    {.name = "kernel", .lo = 1, .hi = 7, .whole = 1},
    {.name = "stride", .dflt = 1, .lo = 1, .hi = 4, .whole = 1},
    {.name = "mode", .words = modes},
};
static const ab_sig layer = {AB_LAYER, 4, 2, conv, 0};
static const ab_sig call = {AB_CALL, 4, 2, conv, 0};

static void placing(void)
{
    ag_error err;
    ab_state st = {.nargs = 3};
    ag_loc at = {"f", 1, 1};
    ok(ab_place(&layer, "conv", &st, NULL, at, at, &err) == 0, "the first positional argument fills 'out'");
    ok(ab_place(&layer, "conv", &st, "mode", at, at, &err) == 3, "a keyword fills its parameter");
    ok(ab_missing(&layer, "conv", &st, at, &err) == AG_ERR, "the kernel is missing");
    is_str(err.msg, "f:1:1: conv needs its 'kernel', like 'conv 256'", "a layer's missing argument, named");
    ok(ab_place(&layer, "conv", &st, NULL, at, at, &err) == 1, "the next positional argument fills 'kernel'");
    ok(ab_missing(&layer, "conv", &st, at, &err) == AG_OK, "nothing required is missing");
    ok(ab_place(&layer, "conv", &st, "kernel", at, at, &err) < 0, "'kernel' again is refused");
    is_str(err.msg, "f:1:1: conv: 'kernel' given twice", "given twice");
    ok(ab_place(&layer, "conv", &st, "strid", at, at, &err) < 0, "an unknown name is refused");
    is_str(err.msg, "f:1:1: conv has no argument 'strid'; did you mean 'stride'?", "with the closest name");

    ab_state many = {.nargs = 5};
    for (int k = 0; k < 4; k++) ab_place(&layer, "conv", &many, NULL, at, at, &err);
    ok(ab_place(&layer, "conv", &many, NULL, at, at, &err) < 0, "a fifth positional argument is refused");
    is_str(err.msg, "f:1:1: conv takes at most 4 arguments, got 5", "a layer counts all its arguments");
    ab_state c = {.nargs = 5};
    for (int k = 0; k < 4; k++) ab_place(&call, "conv", &c, NULL, at, at, &err);
    ab_place(&call, "conv", &c, NULL, at, at, &err);
    is_str(err.msg, "f:1:1: conv takes at most 4 positional arguments", "a call counts its positional ones");
    ab_state none = {0};
    ab_missing(&call, "conv", &none, at, &err);
    is_str(err.msg, "f:1:1: conv needs 2 arguments (out, kernel)", "a call's missing arguments, all named");
}

static void values(void)
{
    ag_error err;
    ag_loc at = {"f", 2, 3};
    double v = -1, d[4];
    ok(ab_number(&layer, "conv", 0, NULL, 16, at, &v, &err) == AG_OK && v == 16, "a number in its range");
    ok(ab_number(&layer, "conv", 0, NULL, 65, at, &v, &err) == AG_ERR, "a number past its range");
    is_str(err.msg, "f:2:3: conv: 'out' must be in [1, 64], got 65", "the range in the message");
    ab_number(&layer, "conv", 1, NULL, 2.5, at, &v, &err);
    is_str(err.msg, "f:2:3: conv: 'kernel' must be a whole number, got 2.5", "a size is whole");
    ab_number(&layer, "conv", 1, "big", 0, at, &v, &err);
    is_str(err.msg, "f:2:3: conv: 'kernel' must be a number, got 'big'", "a word for a number");
    ok(ab_number(&layer, "conv", 3, "random", 0, at, &v, &err) == AG_OK && v == 1, "a word stands for its index");
    ab_number(&layer, "conv", 3, "randon", 0, at, &v, &err);
    is_str(err.msg, "f:2:3: conv: 'mode' must be even or random, got 'randon'; did you mean 'random'?",
           "a word that is not one, with the closest");
    ab_defaults(&layer, d);
    ok(d[0] == 0 && d[2] == 1 && d[3] == 0, "the defaults");
    ok(ab_index(&layer, "stride") == 2 && ab_index(&layer, "strides") == -1, "parameters by name");
    is_str(ab_word(&layer, 3, 0), "even", "the word a value stands for");
}

int main(void)
{
    placing();
    values();
    return tap_done();
}
