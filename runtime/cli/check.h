/*
 * check.h — private to the command line: what `aigc-run check` prints (prefix cr_).
 */
#ifndef AIGC_CLI_CHECK_H
#define AIGC_CLI_CHECK_H

#include <stdio.h>

#include "aigc/dataset.h"
#include "aigc/program.h"

/* For text, what was read (files, bytes, the vocabulary, the split and its windows);
 * then every model's layers with output shapes, parameter counts and FLOPs per sample,
 * the step's segments, and the memory the run plans. */
void cr_print_check(const pg_program *p, const ds_data *d, FILE *out);

#endif
