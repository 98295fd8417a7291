/*
 * hooks.h — Lua hooks: user scripts called by the training loop (prefix lh_).
 *
 * A hook script defines some of five global functions, each called with one `run`
 * object; the ones it leaves out cost the loop one branch:
 *
 *     on_start(run)       once, before the first step
 *     on_step(run)        after each training step
 *     on_eval(run)        after each evaluation on the test split
 *     on_epoch_end(run)   after each epoch, before its metrics row is written
 *     on_end(run)         once, after the last epoch or a stop
 *
 * and steers the run through the `aigc` module: aigc.set_lr, aigc.stop,
 * aigc.save_checkpoint, aigc.sample, aigc.log, aigc.print and aigc.value
 * (docs/hooks.md has them all). The bridge never acts on the run itself: the loop fills
 * an lh_run, calls lh_call, then reads back what the script asked for.
 *
 *     lh_options ho = {.warn = 0, .unsafe = 0};
 *     lh_state *hk;
 *     if (lh_open(&hk, "scripts/hooks/lr_cosine.lua", &ho, &err)) return AG_ERR;
 *     lh_run run = {.name = "gan", .epochs = 100, .noptims = 2, .optims = optims};
 *     ...
 *     if (lh_has(hk, LH_ON_STEP)) {            // fill only what a defined hook reads
 *         run.step = step;  run.loss = (lh_scalars){nlogs, names, values};
 *         int rc = lh_call(hk, LH_ON_STEP, &run, &err);
 *         if (rc == AG_ERR) ...                 // err: "hook 'on_step' failed: ..."
 *         if (rc == LH_WARNED) ...              // warn mode: print err, carry on
 *         ... act on run.optims[k].changed, sample and checkpoint requests; lh_clear(&run);
 *         ... when a metrics row is written: add run.logs, then run.nlogs = 0;
 *         ... if (run.stop) finish the run with run.stop_reason
 *     }
 *     lh_close(hk);
 *
 * Safety
 * ------
 * Scripts are loaded as text only (a precompiled chunk is refused, by lh_open and by
 * `load`). By default a script gets the base library without dofile and loadfile, and
 * string, table, math and utf8; io and os only with lh_options.unsafe. `print` is
 * aigc.print. Each callback, and the script's main chunk, may run at most
 * lh_options.budget Lua instructions; past it the callback fails with "hook 'on_step'
 * exceeded its budget of N instructions", and a script that catches that error with
 * pcall fails again at its next instruction. The Lua state may hold at most
 * lh_options.memory bytes; past it a call fails with "out of memory".
 *
 * Views
 * -----
 * aigc.value(name) gives a read-only view of one of run.tensors. The loop may overwrite
 * or free that memory once the callback returns, so every view carries the serial of the
 * call that made it, and lh_call moves the serial on when it returns: a view kept in a
 * global and used later raises "view of 'fake' used after its step ended" instead of
 * reading stale memory.
 */
#ifndef AIGC_HOOKS_H
#define AIGC_HOOKS_H

#include <stdint.h>

#include "aigc/base.h"
#include "aigc/graph.h"

/* lh_call's third status, next to AG_OK and AG_ERR: in warn mode, a callback failed,
 * err holds the message, and the callback is disabled for the rest of the run. */
#define LH_WARNED 1

/* In the order a run meets them; lh_event_name gives "on_start", ... */
typedef enum lh_event {
    LH_ON_START,
    LH_ON_STEP,
    LH_ON_EVAL,
    LH_ON_EPOCH_END,
    LH_ON_END,
    LH_EVENT_COUNT
} lh_event;

const char *lh_event_name(lh_event ev);

enum {
    LH_NAME_MAX = 64,       /* aigc.log names, sample sections (with the NUL) */
    LH_PATH_MAX = 256,      /* aigc.sample paths */
    LH_REASON_MAX = 256,    /* aigc.stop reasons */
    LH_MAX_LOGS = 32,       /* aigc.log scalars pending at once */
    LH_MAX_SAMPLES = 4,     /* aigc.sample requests pending at once */
};

/* Instructions per callback when lh_options.budget is 0, and bytes the Lua state may
 * hold when lh_options.memory is 0. */
#define LH_DEFAULT_BUDGET 10000000
#define LH_DEFAULT_MEMORY (256 << 20)

typedef struct lh_options {
    int unsafe;             /* also open io and os; sample paths may leave the run dir */
    int warn;               /* a failing callback returns LH_WARNED, not AG_ERR */
    int64_t budget;         /* instructions per callback; 0: LH_DEFAULT_BUDGET */
    int64_t memory;         /* bytes for the Lua state; 0: LH_DEFAULT_MEMORY */
    /* Where aigc.print (and print) lines go, without their newline. NULL: stdout. The
     * loop can clear its progress bar here and let the next update redraw it. */
    void (*print)(void *ctx, const char *line);
    void *print_ctx;
} lh_options;

/* Named numbers the script reads by name: run.loss.loss_D. Owned by the loop. */
typedef struct lh_scalars {
    int n;
    const char *const *names;
    const double *values;
} lh_scalars;

/* An optimizer as run.lr shows it. aigc.set_lr writes lr and sets changed; the loop
 * applies it (opt_set_lr(o, -1, lr)) after the call. */
typedef struct lh_optim {
    const char *name;
    double lr;
    int changed;
} lh_optim;

/* A tensor aigc.value(name) can view: row-major float32, as an ag_node's data. */
typedef struct lh_tensor {
    const char *name;
    const float *data;
    ag_shape shape;
} lh_tensor;

typedef struct lh_log {
    char name[LH_NAME_MAX];
    double value;
} lh_log;

/* aigc.sample{section=, n=, path=}. n == 0: the section's own count; path == "": the
 * loop's choice. A path is relative to the run directory and has no ".." unless the
 * hooks are unsafe. */
typedef struct lh_sample_request {
    char section[LH_NAME_MAX];
    int n;
    char path[LH_PATH_MAX];
} lh_sample_request;

typedef struct lh_run {
    /* In: what the script reads, filled by the loop before each call. */
    const char *name;               /* the spec's name */
    const char *dir;                /* the run directory: runs/NAME by default */
    int epoch, epochs;              /* 1-based; 0 before the first epoch */
    int64_t step;                   /* training steps done */
    int64_t steps_per_epoch;
    int64_t samples;                /* training examples seen */
    double seconds;                 /* since the run started */
    lh_scalars loss;                /* on_step: this step's logged scalars;
                                     * on_eval, on_epoch_end: the epoch's train means */
    lh_scalars test;                /* on_eval, on_epoch_end: test means; else n = 0 */
    int noptims;
    lh_optim *optims;               /* in and out: see lh_optim */
    int ntensors;
    const lh_tensor *tensors;       /* for aigc.value, valid during the call */

    /* Out: what the script asked for, to act on after the call. */
    int stop;                       /* aigc.stop: finish after this callback */
    char stop_reason[LH_REASON_MAX];
    int lr_changed;                 /* some optims[k].changed is set */
    int save_checkpoint;            /* aigc.save_checkpoint() */
    int nlogs;                      /* aigc.log: extra scalars for the next metrics row;
                                     * a name logged again overwrites its value */
    lh_log logs[LH_MAX_LOGS];
    int nsample_requests;
    lh_sample_request sample_requests[LH_MAX_SAMPLES];
} lh_run;

typedef struct lh_state lh_state;

/* Loads script_path as Lua text and runs its main chunk. Errors: a missing file, a
 * precompiled chunk, a syntax error ("scripts/x.lua:12: ..."), an error in the main
 * chunk (with a traceback), a global on_* function that is not a callback ("did you
 * mean"), or a callback name bound to something other than a function. */
int lh_open(lh_state **out, const char *script_path, const lh_options *opt, ag_error *err);

/* Whether the script defines the callback: the loop can skip filling run. */
int lh_has(const lh_state *L, lh_event ev);

/* Calls the callback when the script defines it, else returns AG_OK at once. AG_ERR
 * (or LH_WARNED in warn mode) when it raised an error: the message names the callback
 * and the script, and carries a Lua traceback. Requests accumulate in run until the
 * loop clears them. Every view made during the call ends when it returns. */
int lh_call(lh_state *L, lh_event ev, lh_run *run, ag_error *err);

/* Forgets the requests the loop acts on after each call: lr changes, sample and
 * checkpoint requests. stop stays set, and so do the logs: they wait for the next
 * metrics row (with log_every > 1, not every step writes one); the loop sets
 * run->nlogs = 0 once it has written them. */
void lh_clear(lh_run *run);

void lh_close(lh_state *L);

#endif
