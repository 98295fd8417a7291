/*
 * compile.h — private to runtime/spec: what compile.c, sampler.c and run.c share of
 * the program's compiler (prefix pg_, private helpers _impl).
 */
#ifndef AIGC_SPEC_COMPILE_H
#define AIGC_SPEC_COMPILE_H

#include "eval.h"

/* Plans graph g at batch and writes its constant tables (the diffusion schedule's),
 * which no forward overwrites. */
int pg_plan_impl(pg_program *p, ag_graph *g, int batch, ag_error *err);

/* The input node of n data items (dim 0 follows the batch when batched), bound by its
 * name: `pixels` [N, H, W] in [0, 255] for images, `tokens` [N, context + 1] holding
 * ids in [0, vocab) for text. */
ag_node *pg_data_items_impl(pg_program *p, ev_ctx *c, int n, int batched);

/* What the run has planned so far, in bytes: parameters with their gradients and up
 * to three optimizer moments, and the graphs. */
int64_t pg_planned_bytes_impl(const pg_program *p);

/* sampler.c: compiles sample section k; on failure, pg_sample_context_impl ends the
 * message with the command line's -n and inputs that the section was built with. */
int pg_compile_sample_impl(pg_program *p, int k, ag_error *err);
int pg_sample_context_impl(const sp_spec *s, int k, ag_error *err);

#endif
