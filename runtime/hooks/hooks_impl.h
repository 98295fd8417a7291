/*
 * hooks_impl.h — private to runtime/hooks: the bridge's state, which hooks.c (the
 * sandbox, the calls) and objects.c (what a script sees: the run, views, the aigc
 * module) share (prefix lh_, private helpers _impl).
 */
#ifndef AIGC_HOOKS_IMPL_H
#define AIGC_HOOKS_IMPL_H

#include <lauxlib.h>
#include <lua.h>

#include "aigc/hooks.h"

#define RUN_MT "aigc.run"
#define SCALARS_MT "aigc.scalars"
#define VIEW_MT "aigc.view"

struct lh_state {
    lua_State *L;
    char *path;
    lh_options opt;
    int budget;                 /* instructions per call, as lua_sethook takes it */
    int ref[LH_EVENT_COUNT];    /* registry references of the callbacks, or LUA_NOREF */
    int ref_run;                /* the run userdata every callback receives */
    lh_run *run;                /* during a call; NULL otherwise */
    uint64_t serial;            /* of the call under way; views compare theirs with it */
    const char *what;           /* the callback running, NULL for the main chunk */
    int over;                   /* the budget is spent: fail at every instruction */
    size_t mem, mem_limit;      /* bytes the Lua state holds, and may hold */
    char memmsg[64];
};

/* The state that owns a Lua state lives in the Lua state's extra space. */
static inline lh_state *lh_state_of(lua_State *L) { return *(lh_state **)lua_getextraspace(L); }

/* "; did you mean 'x'?" when a candidate is close, else " (known: a, b, c)", into buf. */
const char *lh_hint_impl(const char *word, const char *const *names, int n, char *buf, size_t size);

/* objects.c: the metatables, the aigc module and the run userdata, whose registry
 * reference it returns. Allocates in L: called under lua_pcall. */
int lh_open_objects_impl(lua_State *L);

#endif
