/* hooks.c — the Lua hook bridge: a sandboxed Lua state, the run object, views of
 * tensors, the aigc module, and protected calls with an instruction budget. */
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

#include "aigc/optim.h"

#include "aigc/suggest.h"

#define RUN_MT "aigc.run"
#define SCALARS_MT "aigc.scalars"
#define VIEW_MT "aigc.view"

static const char *const event_names[] = {"on_start", "on_step", "on_eval", "on_epoch_end", "on_end"};
_Static_assert(AG_COUNTOF(event_names) == LH_EVENT_COUNT, "one name per lh_event");

const char *lh_event_name(lh_event ev)
{
    AG_ASSERT(ev >= 0 && ev < LH_EVENT_COUNT);
    return event_names[ev];
}

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

/* The state that owns a Lua state lives in the Lua state's extra space. */
static lh_state *state_of(lua_State *L) { return *(lh_state **)lua_getextraspace(L); }

/* The run of the call under way; an error when a function that needs one is called
 * from the main chunk. */
static lh_run *current_run(lua_State *L, const char *fn)
{
    lh_state *S = state_of(L);
    if (!S->run) luaL_error(L, "%s can only be called from a callback (on_start, on_step, ...)", fn);
    return S->run;
}

/* Copies the string at idx into a fixed buffer, or raises a bad-argument error about
 * argument arg. */
static void check_name(lua_State *L, int idx, int arg, char *dst, size_t size, const char *what)
{
    size_t len = 0;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    if (!s || len == 0 || len >= size)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string of 1 to %d characters, got %s", what,
                                              (int)size - 1, s ? "a longer or empty one" : luaL_typename(L, idx)));
    /* C would read the string only up to it. */
    if (strlen(s) != len) luaL_argerror(L, arg, lua_pushfstring(L, "%s has a zero byte", what));
    memcpy(dst, s, len + 1);
}

/* "; did you mean 'x'?" when a candidate is close, else " (known: a, b, c)", into buf. */
static const char *hint_from(const char *word, const char *const *names, int n, char *buf, size_t size)
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

/* ------------------------------------------------------------------- run -- */

/* run.loss, run.test and run.lr are small userdata proxies over the lh_run of the call
 * under way, made once: an on_step call allocates nothing. */
enum { SC_LOSS, SC_TEST, SC_LR, SC_COUNT };
static const char *const scalar_sets[] = {"loss", "test", "lr"};
_Static_assert(AG_COUNTOF(scalar_sets) == SC_COUNT, "one name per scalar set");

static int scalars_count(const lh_run *r, int set)
{
    return set == SC_LOSS ? r->loss.n : set == SC_TEST ? r->test.n : r->noptims;
}

static const char *scalars_name(const lh_run *r, int set, int k)
{
    return set == SC_LOSS ? r->loss.names[k] : set == SC_TEST ? r->test.names[k] : r->optims[k].name;
}

static double scalars_value(const lh_run *r, int set, int k)
{
    return set == SC_LOSS ? r->loss.values[k] : set == SC_TEST ? r->test.values[k] : r->optims[k].lr;
}

static int scalars_find(const lh_run *r, int set, const char *name)
{
    for (int k = 0, n = scalars_count(r, set); k < n; k++)
        if (strcmp(scalars_name(r, set, k), name) == 0) return k;
    return -1;
}

static int scalars_set(lua_State *L, int arg)
{
    return *(int *)luaL_checkudata(L, arg, SCALARS_MT);
}

/* A missing name reads as nil, so that `if run.test.loss then` works without a test
 * split. */
static int scalars_index(lua_State *L)
{
    int set = scalars_set(L, 1);
    const lh_run *r = current_run(L, "run");
    const char *name = lua_tostring(L, 2);
    int k = lua_type(L, 2) == LUA_TSTRING ? scalars_find(r, set, name) : -1;
    if (k < 0) return 0;
    lua_pushnumber(L, scalars_value(r, set, k));
    return 1;
}

static int scalars_newindex(lua_State *L)
{
    int set = scalars_set(L, 1);
    if (set == SC_LR) return luaL_error(L, "run.lr is read-only: use aigc.set_lr(name, lr)");
    return luaL_error(L, "run.%s is read-only", scalar_sets[set]);
}

static int scalars_len(lua_State *L)
{
    int set = scalars_set(L, 1);
    lua_pushinteger(L, scalars_count(current_run(L, "run"), set));
    return 1;
}

/* The iterator of pairs(): names in the loop's order. */
static int scalars_next(lua_State *L)
{
    int set = scalars_set(L, 1);
    const lh_run *r = current_run(L, "run");
    int k = lua_isnil(L, 2) ? 0 : lua_type(L, 2) == LUA_TSTRING ? scalars_find(r, set, lua_tostring(L, 2)) + 1 : -1;
    if (k <= 0 && !lua_isnil(L, 2)) return 0;
    if (k >= scalars_count(r, set)) return 0;
    lua_pushstring(L, scalars_name(r, set, k));
    lua_pushnumber(L, scalars_value(r, set, k));
    return 2;
}

static int scalars_pairs(lua_State *L)
{
    scalars_set(L, 1);
    lua_pushcfunction(L, scalars_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int scalars_tostring(lua_State *L)
{
    lua_pushfstring(L, "run.%s", scalar_sets[scalars_set(L, 1)]);
    return 1;
}

enum {
    RF_NAME, RF_DIR, RF_EPOCH, RF_EPOCHS, RF_STEP, RF_STEPS_PER_EPOCH, RF_SAMPLES, RF_SECONDS,
    RF_LOSS, RF_TEST, RF_LR, RF_COUNT
};
static const char *const run_fields[] = {"name", "dir", "epoch", "epochs", "step", "steps_per_epoch",
                                         "samples", "seconds", "loss", "test", "lr"};
_Static_assert(AG_COUNTOF(run_fields) == RF_COUNT, "one name per run field");

static int run_index(lua_State *L)
{
    luaL_checkudata(L, 1, RUN_MT);
    const lh_run *r = current_run(L, "run");
    const char *key = luaL_checkstring(L, 2);
    int f = 0;
    while (f < RF_COUNT && strcmp(run_fields[f], key) != 0) f++;
    switch (f) {
    case RF_NAME: lua_pushstring(L, r->name); break;
    case RF_DIR: lua_pushstring(L, r->dir); break;
    case RF_EPOCH: lua_pushinteger(L, r->epoch); break;
    case RF_EPOCHS: lua_pushinteger(L, r->epochs); break;
    case RF_STEP: lua_pushinteger(L, r->step); break;
    case RF_STEPS_PER_EPOCH: lua_pushinteger(L, r->steps_per_epoch); break;
    case RF_SAMPLES: lua_pushinteger(L, r->samples); break;
    case RF_SECONDS: lua_pushnumber(L, r->seconds); break;
    case RF_LOSS: case RF_TEST: case RF_LR: lua_getiuservalue(L, 1, f - RF_LOSS + 1); break;
    default: {
        char hint[256];
        return luaL_error(L, "run has no field '%s'%s", key, hint_from(key, run_fields, RF_COUNT, hint, sizeof hint));
    }
    }
    return 1;
}

static int run_newindex(lua_State *L)
{
    return luaL_error(L, "run is read-only: steer the run with the aigc functions");
}

static int run_tostring(lua_State *L)
{
    lh_state *S = state_of(L);
    if (!S->run) {
        lua_pushliteral(L, "run (outside a callback)");
        return 1;
    }
    lua_pushfstring(L, "run '%s' epoch %d step %I", S->run->name ? S->run->name : "", S->run->epoch,
                    (lua_Integer)S->run->step);
    return 1;
}

/* ----------------------------------------------------------------- views -- */

typedef struct lh_view {
    const float *data;
    ag_shape shape;
    int64_t numel;
    uint64_t serial;
    char name[LH_NAME_MAX];
} lh_view;

/* Every use of a view goes through here: a view outlives its data once its call is over. */
static lh_view *check_view(lua_State *L, int arg)
{
    lh_view *v = luaL_checkudata(L, arg, VIEW_MT);
    if (v->serial != state_of(L)->serial) luaL_error(L, "view of '%s' used after its step ended", v->name);
    return v;
}

static int view_min(lua_State *L)
{
    lh_view *v = check_view(L, 1);
    double m = v->numel ? INFINITY : NAN;
    for (int64_t k = 0; k < v->numel; k++)
        if (!(v->data[k] >= m)) m = v->data[k];  /* NaN wins, as torch.min */
    lua_pushnumber(L, m);
    return 1;
}

static int view_max(lua_State *L)
{
    lh_view *v = check_view(L, 1);
    double m = v->numel ? -INFINITY : NAN;
    for (int64_t k = 0; k < v->numel; k++)
        if (!(v->data[k] <= m)) m = v->data[k];
    lua_pushnumber(L, m);
    return 1;
}

static double view_mean_of(const lh_view *v)
{
    double s = 0;
    for (int64_t k = 0; k < v->numel; k++) s += v->data[k];
    return v->numel ? s / (double)v->numel : NAN;
}

static int view_mean(lua_State *L)
{
    lua_pushnumber(L, view_mean_of(check_view(L, 1)));
    return 1;
}

/* The sample standard deviation (n - 1), torch.std's default; NaN below 2 elements. */
static int view_std(lua_State *L)
{
    lh_view *v = check_view(L, 1);
    double m = view_mean_of(v), s = 0;
    for (int64_t k = 0; k < v->numel; k++) s += (v->data[k] - m) * (v->data[k] - m);
    lua_pushnumber(L, v->numel > 1 ? sqrt(s / (double)(v->numel - 1)) : NAN);
    return 1;
}

/* Nested tables, one level per dimension; a scalar view is a number. One table per
 * level is open on the stack: each element goes into the innermost, and a full table
 * goes into its parent, which opens a fresh one below it. */
static int view_totable(lua_State *L)
{
    lh_view *v = check_view(L, 1);
    const int nd = v->shape.ndim, *d = v->shape.d;
    if (nd == 0) {
        lua_pushnumber(L, v->data[0]);
        return 1;
    }
    if (v->numel == 0) {
        lua_newtable(L);
        return 1;
    }
    int idx[AG_MAX_DIMS] = {0};
    for (int j = 0; j < nd; j++) lua_createtable(L, d[j], 0);
    for (int64_t k = 0; k < v->numel; k++) {
        lua_pushnumber(L, v->data[k]);
        int j = nd - 1;
        lua_rawseti(L, -2, ++idx[j]);
        while (j > 0 && idx[j] == d[j]) {
            idx[j--] = 0;
            lua_rawseti(L, -2, ++idx[j]);
        }
        if (k + 1 < v->numel)
            for (int m = j + 1; m < nd; m++) lua_createtable(L, d[m], 0);
    }
    return 1;
}

static const luaL_Reg view_methods[] = {
    {"min", view_min}, {"max", view_max}, {"mean", view_mean}, {"std", view_std}, {"totable", view_totable},
};

/* v[i] (1-based, over the flattened data), v.shape, v.numel, v.name, and the methods. */
static int view_index(lua_State *L)
{
    lh_view *v = check_view(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        int isint;
        lua_Integer i = lua_tointegerx(L, 2, &isint);
        if (!isint) return luaL_error(L, "view of '%s' indexed with %f: an index is an integer", v->name,
                                      lua_tonumber(L, 2));
        if (i < 1 || i > v->numel)
            return luaL_error(L, "index %I out of range for view of '%s' (%I elements)", i, v->name,
                              (lua_Integer)v->numel);
        lua_pushnumber(L, v->data[i - 1]);
        return 1;
    }
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "shape") == 0) {
        lua_createtable(L, v->shape.ndim, 0);
        for (int j = 0; j < v->shape.ndim; j++) {
            lua_pushinteger(L, v->shape.d[j]);
            lua_rawseti(L, -2, j + 1);
        }
        return 1;
    }
    if (strcmp(key, "numel") == 0) {
        lua_pushinteger(L, v->numel);
        return 1;
    }
    if (strcmp(key, "name") == 0) {
        lua_pushstring(L, v->name);
        return 1;
    }
    const char *names[AG_COUNTOF(view_methods) + 3] = {"shape", "numel", "name"};
    for (size_t k = 0; k < AG_COUNTOF(view_methods); k++) {
        if (strcmp(key, view_methods[k].name) == 0) {
            lua_pushcfunction(L, view_methods[k].func);
            return 1;
        }
        names[k + 3] = view_methods[k].name;
    }
    char hint[256];
    return luaL_error(L, "view has no field '%s'%s", key, hint_from(key, names, AG_COUNTOF(names), hint, sizeof hint));
}

static int view_len(lua_State *L)
{
    lua_pushinteger(L, check_view(L, 1)->numel);
    return 1;
}

static int view_newindex(lua_State *L)
{
    lh_view *v = luaL_checkudata(L, 1, VIEW_MT);
    return luaL_error(L, "view of '%s' is read-only", v->name);
}

static int view_tostring(lua_State *L)
{
    lh_view *v = luaL_checkudata(L, 1, VIEW_MT);
    char shape[64];
    lua_pushfstring(L, "view of '%s' %s", v->name, ag_shape_str(&v->shape, 0, shape, sizeof shape));
    return 1;
}

/* ------------------------------------------------------------ aigc module -- */

static int aigc_value(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lh_run *r = current_run(L, "aigc.value");
    int k = 0;
    while (k < r->ntensors && strcmp(r->tensors[k].name, name) != 0) k++;
    if (k == r->ntensors) {
        const char *names[64];
        int n = r->ntensors < 64 ? r->ntensors : 64;
        for (int j = 0; j < n; j++) names[j] = r->tensors[j].name;
        char hint[512];
        return luaL_error(L, "no value '%s' in this step%s", name, hint_from(name, names, n, hint, sizeof hint));
    }
    const lh_tensor *t = &r->tensors[k];
    lh_view *v = lua_newuserdatauv(L, sizeof *v, 0);
    v->data = t->data;
    v->shape = t->shape;
    v->numel = ag_numel(&t->shape);
    v->serial = state_of(L)->serial;
    snprintf(v->name, sizeof v->name, "%s", t->name);
    luaL_setmetatable(L, VIEW_MT);
    return 1;
}

static int aigc_set_lr(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    double lr = luaL_checknumber(L, 2);
    lh_run *r = current_run(L, "aigc.set_lr");
    if (!(lr >= 0 && lr <= OPT_LR_MAX))
        return luaL_argerror(L, 2, lua_pushfstring(L, "a learning rate is a number in [0, %f], got %f", OPT_LR_MAX, lr));
    int k = scalars_find(r, SC_LR, name);
    if (k < 0) {
        const char *names[64];
        int n = r->noptims < 64 ? r->noptims : 64;
        for (int j = 0; j < n; j++) names[j] = r->optims[j].name;
        char hint[512];
        return luaL_error(L, "unknown optimizer '%s'%s", name, hint_from(name, names, n, hint, sizeof hint));
    }
    r->optims[k].lr = lr;
    r->optims[k].changed = 1;
    r->lr_changed = 1;
    return 0;
}

/* The first reason stands: it is the one that decided. */
static int aigc_stop(lua_State *L)
{
    const char *reason = luaL_optstring(L, 1, NULL);
    lh_run *r = current_run(L, "aigc.stop");
    if (!r->stop) {
        lh_state *S = state_of(L);
        if (reason)
            snprintf(r->stop_reason, sizeof r->stop_reason, "%s", reason);
        else
            snprintf(r->stop_reason, sizeof r->stop_reason, "stopped by hook '%s'", S->what ? S->what : "");
    }
    r->stop = 1;
    return 0;
}

static int aigc_save_checkpoint(lua_State *L)
{
    current_run(L, "aigc.save_checkpoint")->save_checkpoint = 1;
    return 0;
}

/* A path the loop may write under the run directory: relative, no "..". */
static int path_is_inside(const char *p)
{
    if (p[0] == '/') return 0;
    for (const char *c = p; *c;) {
        size_t len = strcspn(c, "/");
        if (len == 2 && c[0] == '.' && c[1] == '.') return 0;
        c += len;
        while (*c == '/') c++;
    }
    return 1;
}

/* Whether rel, a path inside the run directory dir by its words (path_is_inside), stays
 * in it on the disk: no symlink as the file (or as its ".tmp", which af_begin opens
 * before the rename) and none on the way that leads out. */
static int stays_inside(const char *dir, const char *rel)
{
    char full[2 * PATH_MAX], real_dir[PATH_MAX], real_parent[PATH_MAX];
    if (!realpath(dir, real_dir)) return 1; /* no run directory yet: no link in it */
    snprintf(full, sizeof full, "%s/%s.tmp", dir, rel);
    struct stat st;
    if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode)) return 0;
    full[strlen(full) - 4] = 0;
    if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode)) return 0;
    *strrchr(full, '/') = 0;
    /* A directory that is not there: the write fails, and says so. */
    if (!realpath(full, real_parent)) return 1;
    size_t n = strlen(real_dir);
    return strncmp(real_parent, real_dir, n) == 0 && (real_parent[n] == 0 || real_parent[n] == '/');
}

static int aigc_sample(lua_State *L)
{
    lh_run *r = current_run(L, "aigc.sample");
    lh_sample_request q = {.section = ""}; /* the spec's first sample section */
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        static const char *const keys[] = {"section", "n", "path"};
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            size_t k = 0;
            while (key && k < AG_COUNTOF(keys) && strcmp(keys[k], key) != 0) k++;
            if (!key || k == AG_COUNTOF(keys)) {
                char hint[128];
                const char *word = key ? key : luaL_typename(L, -2);
                return luaL_argerror(L, 1, lua_pushfstring(L, "unknown key '%s'%s", word,
                                                           hint_from(word, keys, AG_COUNTOF(keys), hint, sizeof hint)));
            }
            lua_pop(L, 1);
        }
        if (lua_getfield(L, 1, "section") != LUA_TNIL) check_name(L, -1, 1, q.section, sizeof q.section, "section");
        lua_pop(L, 1);
        if (lua_getfield(L, 1, "n") != LUA_TNIL) {
            int isint;
            lua_Integer n = lua_tointegerx(L, -1, &isint);
            if (!isint || n < 1 || n > 10000)
                return luaL_argerror(L, 1, "n must be an integer from 1 to 10000");
            q.n = (int)n;
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 1, "path") != LUA_TNIL) {
            check_name(L, -1, 1, q.path, sizeof q.path, "path");
            if (!state_of(L)->opt.unsafe && !path_is_inside(q.path))
                return luaL_argerror(L, 1, lua_pushfstring(L, "path '%s' leaves the run directory "
                                                              "(allowed with --unsafe-hooks)", q.path));
            if (!state_of(L)->opt.unsafe && !stays_inside(r->dir, q.path))
                return luaL_argerror(L, 1, lua_pushfstring(L, "path '%s' leaves the run directory through "
                                                              "a symlink (allowed with --unsafe-hooks)", q.path));
        }
        lua_pop(L, 1);
    }
    if (r->nsample_requests == LH_MAX_SAMPLES)
        return luaL_error(L, "aigc.sample: at most %d requests per step", LH_MAX_SAMPLES);
    r->sample_requests[r->nsample_requests++] = q;
    return 0;
}

/* Letters, digits, '_', '.', '-': a name that goes into JSON and CSV headers as is. */
static int plain_name(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static int aigc_log(lua_State *L)
{
    char name[LH_NAME_MAX];
    check_name(L, 1, 1, name, sizeof name, "a name");
    if (!plain_name(name)) return luaL_argerror(L, 1, "a name has only letters, digits, '_', '.' and '-'");
    double value = luaL_checknumber(L, 2);
    lh_run *r = current_run(L, "aigc.log");
    int k = 0;
    while (k < r->nlogs && strcmp(r->logs[k].name, name) != 0) k++;
    if (k == LH_MAX_LOGS) return luaL_error(L, "aigc.log: at most %d names per metrics row", LH_MAX_LOGS);
    if (k == r->nlogs) {
        memcpy(r->logs[k].name, name, sizeof name);
        r->nlogs++;
    }
    r->logs[k].value = value;
    return 0;
}

/* Like print: the arguments through tostring, separated by tabs, as one line. */
static int aigc_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int k = 1; k <= n; k++) {
        if (k > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, k, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    const char *line = lua_tostring(L, -1);
    lh_state *S = state_of(L);
    if (S->opt.print) {
        S->opt.print(S->opt.print_ctx, line);
    } else {
        fputs(line, stdout);
        fputc('\n', stdout);
    }
    return 0;
}

static const luaL_Reg aigc_funcs[] = {
    {"value", aigc_value},
    {"set_lr", aigc_set_lr},
    {"stop", aigc_stop},
    {"save_checkpoint", aigc_save_checkpoint},
    {"sample", aigc_sample},
    {"log", aigc_log},
    {"print", aigc_print},
    {NULL, NULL},
};

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

static void new_metatable(lua_State *L, const char *name, const luaL_Reg *funcs)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, funcs, 0);
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");  /* getmetatable() shows this, setmetatable fails */
    lua_pop(L, 1);
}

/* Everything that allocates in the Lua state, run under lua_pcall by lh_open so that
 * running out of memory is an error, not a panic. */
static int setup(lua_State *L)
{
    lh_state *S = state_of(L);
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

    new_metatable(L, RUN_MT, (const luaL_Reg[]){{"__index", run_index}, {"__newindex", run_newindex},
                                                 {"__tostring", run_tostring}, {NULL, NULL}});
    new_metatable(L, SCALARS_MT,
                  (const luaL_Reg[]){{"__index", scalars_index}, {"__newindex", scalars_newindex},
                                     {"__len", scalars_len}, {"__pairs", scalars_pairs},
                                     {"__tostring", scalars_tostring}, {NULL, NULL}});
    new_metatable(L, VIEW_MT, (const luaL_Reg[]){{"__index", view_index}, {"__newindex", view_newindex},
                                                  {"__len", view_len}, {"__tostring", view_tostring},
                                                  {NULL, NULL}});

    luaL_newlib(L, aigc_funcs);
    lua_pushliteral(L, AIGC_VERSION);
    lua_setfield(L, -2, "version");
    lua_getfield(L, -1, "print");
    lua_setglobal(L, "print");
    lua_setglobal(L, "aigc");

    lua_newuserdatauv(L, 0, SC_COUNT);
    luaL_setmetatable(L, RUN_MT);
    for (int set = 0; set < SC_COUNT; set++) {
        *(int *)lua_newuserdatauv(L, sizeof(int), 0) = set;
        luaL_setmetatable(L, SCALARS_MT);
        lua_setiuservalue(L, -2, set + 1);
    }
    S->ref_run = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* After the main chunk: the callbacks it defined, by reference, and no global on_*
 * function that looks like a misspelt one. */
static int find_callbacks(lua_State *L)
{
    lh_state *S = state_of(L);
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
                                  hint_from(name, event_names, LH_EVENT_COUNT, hint, sizeof hint));
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
    lh_state *S = state_of(L);
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
