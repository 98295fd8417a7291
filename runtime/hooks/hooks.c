/* hooks.c — the Lua hook bridge: a sandboxed Lua state, its memory cap, and protected
 * calls with an instruction budget (objects.c has what a script sees). */
#include "aigc/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "aigc/suggest.h"
#include "hooks_impl.h"

static const char *const event_names[] = {"on_start", "on_step", "on_eval", "on_epoch_end", "on_end"};
_Static_assert(AG_COUNTOF(event_names) == LH_EVENT_COUNT, "one name per lh_event");

const char *lh_event_name(lh_event ev)
{
    AG_ASSERT(ev >= 0 && ev < LH_EVENT_COUNT);
    return event_names[ev];
}


/* The Lua state's allocator: realloc under a cap, so that a script cannot take the
 * machine's memory (on Linux a huge malloc succeeds and the writes that follow kill the
 * process). A refusal becomes Lua's "not enough memory" error. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lh_state *S = ud;
    size_t old = ptr ? osize : 0;  /* without ptr, osize tells the kind of object */
    if (nsize == 0) {
        free(ptr);
        S->mem -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > S->mem_limit - S->mem) return NULL;
    void *p = realloc(ptr, nsize);
    if (p) S->mem = S->mem - old + nsize;
    return p;
}

/* Only a Lua call outside lua_pcall can get here: a bug in this file. */
static int panic(lua_State *L)
{
    fprintf(stderr, "aigc-run: internal error: unprotected Lua error: %s\n", lua_tostring(L, -1));
    abort();
}


const char *lh_hint_impl(const char *word, const char *const *names, int n, char *buf, size_t size)
{
    sg_best b;
    sg_init(&b, word);
    for (int k = 0; k < n; k++) sg_offer(&b, names[k]);
    if (b.best) return sg_hint(&b, buf, size);
    size_t at = (size_t)snprintf(buf, size, n ? " (known:" : " (there are none)");
    for (int k = 0; k < n && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, "%s %s", k ? "," : "", names[k]);
    if (n && at < size) snprintf(buf + at, size - at, ")");
    return buf;
}

/* ---------------------------------------------------------------- sandbox -- */

/* load, with the mode forced to text: load(chunk [, chunkname [, mode [, env]]]). An
 * absent env and a nil env differ, so the argument count is kept. */
static int load_text(lua_State *L)
{
    int n = lua_gettop(L);
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (n >= 4) lua_pushvalue(L, 4);
    lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L) - 4;
}

/* setmetatable as Lua's, but refusing a metatable with __gc. Lua runs finalizers (when
 * it collects, and in lua_close) with debug hooks off, so no instruction budget can stop
 * one that loops; an object is only finalized if its metatable has __gc when it is set,
 * so refusing it here is enough. */
static int setmetatable_no_gc(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    lua_settop(L, 2);
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_argerror(L, 2, "hooks cannot use __gc: a finalizer runs outside the "
                                       "instruction budget");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_setmetatable(L, 1);
    return 1;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction open)
{
    luaL_requiref(L, name, open, 1);
    lua_pop(L, 1);
}

/* Everything that allocates in the Lua state, run under lua_pcall by lh_open so that
 * running out of memory is an error, not a panic. */
static int setup(lua_State *L)
{
    lh_state *S = lh_state_of(L);
    open_lib(L, LUA_GNAME, luaopen_base);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
    if (S->opt.unsafe) {
        open_lib(L, LUA_IOLIBNAME, luaopen_io);
        open_lib(L, LUA_OSLIBNAME, luaopen_os);
    }
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_getglobal(L, "load");
    lua_pushcclosure(L, load_text, 1);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, setmetatable_no_gc);
    lua_setglobal(L, "setmetatable");

    S->ref_run = lh_open_objects_impl(L);
    return 0;
}

/* After the main chunk: the callbacks it defined, by reference, and no global on_*
 * function that looks like a misspelt one. */
static int find_callbacks(lua_State *L)
{
    lh_state *S = lh_state_of(L);
    for (int ev = 0; ev < LH_EVENT_COUNT; ev++) {
        int t = lua_getglobal(L, event_names[ev]);
        if (t == LUA_TFUNCTION) {
            S->ref[ev] = luaL_ref(L, LUA_REGISTRYINDEX);
            continue;
        }
        if (t != LUA_TNIL)
            return luaL_error(L, "%s: '%s' is a %s, expected a function", S->path, event_names[ev],
                              lua_typename(L, t));
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION) {
            const char *name = lua_tostring(L, -2);
            int ev = 0;
            while (ev < LH_EVENT_COUNT && strcmp(event_names[ev], name) != 0) ev++;
            if (strncmp(name, "on_", 3) == 0 && ev == LH_EVENT_COUNT) {
                char hint[256];
                return luaL_error(L, "%s: unknown callback '%s'%s", S->path, name,
                                  lh_hint_impl(name, event_names, LH_EVENT_COUNT, hint, sizeof hint));
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* ------------------------------------------------------------------ calls -- */

/* Runs after every budget instructions of a call. Once spent, the budget stays spent:
 * the hook fires at every instruction, so a script that catches the error with pcall
 * fails again at once and the error reaches lh_call. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    lh_state *S = lh_state_of(L);
    if (!S->over) {
        S->over = 1;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    }
    luaL_where(L, 0);  /* the running Lua function: a count hook fires in no other */
    if (S->what)
        lua_pushfstring(L, "hook '%s' exceeded its budget of %d instructions", S->what, S->budget);
    else
        lua_pushfstring(L, "the main chunk exceeded its budget of %d instructions", S->budget);
    lua_concat(L, 2);
    lua_error(L);
}

/* The message handler: the error as a string, with the Lua traceback appended. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Calls the function below nargs arguments on top of the stack, with traceback as the
 * message handler just below it, under the budget. Leaves the error on top on failure. */
static int budgeted_call(lh_state *S, int nargs)
{
    lua_State *L = S->L;
    S->over = 0;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, S->budget);
    int st = lua_pcall(L, nargs, 0, -nargs - 2);
    lua_sethook(L, NULL, 0, 0);
    S->over = 0;
    return st;
}

/* The error of a failed call, on top of the stack, as text. */
static const char *error_text(lh_state *S, int status)
{
    if (status == LUA_ERRMEM) {
        /* Not through Lua: its memory is what ran out. */
        snprintf(S->memmsg, sizeof S->memmsg, "out of memory: hooks may use %zu MiB", S->mem_limit >> 20);
        return S->memmsg;
    }
    const char *msg = lua_tostring(S->L, -1);
    return msg ? msg : "(error object is not a string)";
}

int lh_has(const lh_state *S, lh_event ev)
{
    AG_ASSERT(ev >= 0 && ev < LH_EVENT_COUNT);
    return S->ref[ev] != LUA_NOREF;
}

int lh_call(lh_state *S, lh_event ev, lh_run *run, ag_error *err)
{
    AG_ASSERT(ev >= 0 && ev < LH_EVENT_COUNT && run);
    if (S->ref[ev] == LUA_NOREF) return AG_OK;
    lua_State *L = S->L;
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref[ev]);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_run);
    S->run = run;
    S->what = event_names[ev];
    int st = budgeted_call(S, 1);
    const char *msg = st == LUA_OK ? NULL : error_text(S, st);
    S->run = NULL;
    S->serial++;  /* every view made in this call is over */
    if (st == LUA_OK) {
        lua_pop(L, 1);
        return AG_OK;
    }
    int rc = AG_ERR;
    if (S->opt.warn) {
        ag_errorf(err, (ag_loc){0}, "hook '%s' failed (disabled for the rest of the run): %s", event_names[ev],
                  msg);
        luaL_unref(L, LUA_REGISTRYINDEX, S->ref[ev]);
        S->ref[ev] = LUA_NOREF;
        rc = LH_WARNED;
    } else {
        ag_errorf(err, (ag_loc){0}, "hook '%s' failed: %s", event_names[ev], msg);
    }
    lua_pop(L, 2);
    return rc;
}

void lh_clear(lh_run *run)
{
    for (int k = 0; k < run->noptims; k++) run->optims[k].changed = 0;
    run->lr_changed = 0;
    run->save_checkpoint = 0;
    run->nsample_requests = 0;
}

/* ------------------------------------------------------------ open, close -- */

int lh_open(lh_state **out, const char *path, const lh_options *opt, ag_error *err)
{
    *out = NULL;
    /* Checked here, not left to luaL_loadfilex, whose fopen would block on a FIFO. */
    char why[128];
    int fd = ag_open_regular(path, O_RDONLY, why, sizeof why);
    if (fd < 0) {
        char hint[4200];
        return ag_errorf(err, (ag_loc){path, 0, 0}, "cannot open the hook script: %s%s", why,
                         ag_relative_hint(path, hint, sizeof hint));
    }
    close(fd);
    lh_state *S = ag_xcalloc(1, sizeof *S);
    if (opt) S->opt = *opt;
    int64_t budget = S->opt.budget > 0 ? S->opt.budget : LH_DEFAULT_BUDGET;
    S->budget = budget < INT_MAX ? (int)budget : INT_MAX;
    S->mem_limit = (size_t)(S->opt.memory > 0 ? S->opt.memory : LH_DEFAULT_MEMORY);
    lua_State *L = lua_newstate(capped_alloc, S);
    if (!L) {
        free(S);
        return ag_errorf(err, (ag_loc){path, 0, 0}, "cannot make a Lua state: out of memory");
    }
    lua_atpanic(L, panic);
    S->L = L;
    S->path = ag_xstrdup(path);
    for (int ev = 0; ev < LH_EVENT_COUNT; ev++) S->ref[ev] = LUA_NOREF;
    S->ref_run = LUA_NOREF;
    *(lh_state **)lua_getextraspace(L) = S;

    lua_pushcfunction(L, setup);
    int st = lua_pcall(L, 0, 0, 0);
    if (st != LUA_OK) {
        ag_errorf(err, (ag_loc){path, 0, 0}, "cannot set up Lua: %s", error_text(S, st));
        lh_close(S);
        return AG_ERR;
    }
    /* Lua's own messages carry the place: "scripts/x.lua:12: unexpected symbol ...". */
    lua_pushcfunction(L, traceback);
    st = luaL_loadfilex(L, path, "t");
    if (st == LUA_OK) {
        S->what = NULL;
        st = budgeted_call(S, 0);
    }
    if (st == LUA_OK) {
        lua_pop(L, 1);
        lua_pushcfunction(L, find_callbacks);
        st = lua_pcall(L, 0, 0, 0);
    }
    if (st != LUA_OK) {
        const char *msg = error_text(S, st);
        if (strstr(msg, "attempt to load a binary chunk"))
            ag_errorf(err, (ag_loc){path, 0, 0}, "a precompiled Lua chunk: hooks are loaded as source text only");
        else if (st == LUA_ERRMEM)
            ag_errorf(err, (ag_loc){path, 0, 0}, "%s", msg);
        else
            ag_errorf(err, (ag_loc){0}, "%s", msg);
        lh_close(S);
        return AG_ERR;
    }
    *out = S;
    return AG_OK;
}

void lh_close(lh_state *S)
{
    if (!S) return;
    lua_close(S->L);
    free(S->path);
    free(S);
}
