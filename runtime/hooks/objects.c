/* objects.c — what a hook script sees: the run object, views of tensors, and the aigc
 * module (set_lr, stop, save_checkpoint, sample, log, print, value). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/optim.h"
#include "aigc/suggest.h"
#include "hooks_impl.h"

/* The run of the call under way; an error when a function that needs one is called
 * from the main chunk. */
static lh_run *current_run(lua_State *L, const char *fn)
{
    lh_state *S = lh_state_of(L);
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
        return luaL_error(L, "run has no field '%s'%s", key, lh_hint_impl(key, run_fields, RF_COUNT, hint, sizeof hint));
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
    lh_state *S = lh_state_of(L);
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
    if (v->serial != lh_state_of(L)->serial) luaL_error(L, "view of '%s' used after its step ended", v->name);
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
    return luaL_error(L, "view has no field '%s'%s", key, lh_hint_impl(key, names, AG_COUNTOF(names), hint, sizeof hint));
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
        return luaL_error(L, "no value '%s' in this step%s", name, lh_hint_impl(name, names, n, hint, sizeof hint));
    }
    const lh_tensor *t = &r->tensors[k];
    lh_view *v = lua_newuserdatauv(L, sizeof *v, 0);
    v->data = t->data;
    v->shape = t->shape;
    v->numel = ag_numel(&t->shape);
    v->serial = lh_state_of(L)->serial;
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
        return luaL_error(L, "unknown optimizer '%s'%s", name, lh_hint_impl(name, names, n, hint, sizeof hint));
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
        lh_state *S = lh_state_of(L);
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
                                                           lh_hint_impl(word, keys, AG_COUNTOF(keys), hint, sizeof hint)));
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
            if (!lh_state_of(L)->opt.unsafe && !path_is_inside(q.path))
                return luaL_argerror(L, 1, lua_pushfstring(L, "path '%s' leaves the run directory "
                                                              "(allowed with --unsafe-hooks)", q.path));
            if (!lh_state_of(L)->opt.unsafe && !stays_inside(r->dir, q.path))
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
    lh_state *S = lh_state_of(L);
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

static void new_metatable(lua_State *L, const char *name, const luaL_Reg *funcs)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, funcs, 0);
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");  /* getmetatable() shows this, setmetatable fails */
    lua_pop(L, 1);
}

int lh_open_objects_impl(lua_State *L)
{
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
    return luaL_ref(L, LUA_REGISTRYINDEX);
}
