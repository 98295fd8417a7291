/*
 * fuzz_expr.c — the step language's parser: the input, as text, through ex_parse_stmt
 * and ex_parse_expr, each tree dumped back (which walks every node), at a place with a
 * file so that error messages format their location.
 */
#include "aigc/expr.h"
#include "fuzz.h"

static void fuzz_expr(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    const ag_loc at = {"fuzz.yaml", 3, 9};
    char dump[512];
    ag_error err;
    ar_arena a;
    ar_init(&a, 0);
    ex_stmt *s;
    if (ex_parse_stmt(&a, text, at, &s, &err) == AG_OK) ex_dump_stmt(s, dump, sizeof dump);
    ex_node *n;
    if (ex_parse_expr(&a, text, at, &n, &err) == AG_OK) ex_dump_expr(n, dump, sizeof dump);
    ar_free(&a);
    free(text);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_expr(data, size);
    return 0;
}
#endif
