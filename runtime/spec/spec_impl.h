/*
 * spec_impl.h — private to runtime/spec: the key tables that spec.c and spec_sample.c
 * read mappings with, and the helpers they share (prefix sp_, private ones _impl).
 */
#ifndef AIGC_SPEC_IMPL_H
#define AIGC_SPEC_IMPL_H

#include "aigc/spec.h"

/* The keys of a mapping, one table each, in the manner of redis's config table: a key's
 * type, the range or the words it takes, its default and the field its value goes to.
 * sp_bind reads a mapping by its table: the unknown keys and their "did you mean" come
 * from its names, in its order; the range a message states, from its bounds. A key of
 * type SP_OWN is a list, a section or an expression over others: its load function
 * reads it, or else the mapping's own code, after sp_bind. Keys are read pass by pass
 * (pass 0 first), each pass in the table's order: a table lists its names in the order
 * "did you mean" offers them, and numbers passes where it reads its keys in another. */
typedef enum sp_key_type {
    SP_OWN,
    SP_INT,   /* int, in [min, max] */
    SP_U64,   /* uint64_t, in [min, max] */
    SP_FLOAT, /* double, in [lo, hi] */
    SP_BOOL,  /* int */
    SP_STR,   /* const char * (default dflt_text) */
    SP_WORD,  /* int: the index of the value in words; dflt the default's */
    SP_EXPR,  /* ex_node *, dflt_text parsed at the mapping when the key is absent */
    SP_MAP,   /* a mapping of keys sub, whose fields are in the same struct */
    SP_FN,    /* a scalar that check alone reads */
} sp_key_type;

enum {
    SP_REQUIRED = 1u << 0,
    SP_HAS_LOC = 1u << 1, /* the value's place goes to loc_offset (the mapping's if absent) */
    SP_IMAGES = 1u << 2,  /* applies to image data only */
    SP_TEXT = 1u << 3,    /* applies to text data only */
    SP_ALWAYS = 1u << 4,  /* SP_OWN: load is called when the key is absent too */
    SP_FEATURES = 1u << 5, /* applies to features data only */
};

typedef struct sp_key sp_key;
struct sp_key {
    const char *name;
    sp_key_type type;
    unsigned flags;
    long min, max;
    double lo, hi;
    double dflt;
    const char *dflt_text;
    const char *const *words;
    const char *words_msg; /* the refusal of a word, %s the value */
    size_t offset, loc_offset;
    const sp_key *sub;
    int nsub;
    int pass;
    /* SP_OWN: reads the key's value v (NULL when absent, with SP_ALWAYS) into dst. */
    int (*load)(sp_spec *s, void *dst, const yt_node *map, const yt_node *v, ag_error *err);
    /* Called when the key is given, before its value is read: may it be given here? */
    int (*allow)(const void *dst, const yt_node *map, const yt_node *v, ag_error *err);
    /* Called once the value is read (or defaulted: v NULL). */
    int (*check)(void *dst, const yt_node *map, const yt_node *v, ag_error *err);
};

#define SP_KEYS(table) (table), (int)AG_COUNTOF(table)

/* Reads the keys of map that the table binds into dst, in the table's order, after
 * refusing any key it does not name; data (SP_IMAGES or SP_TEXT, 0 elsewhere) picks
 * the keys that apply. where names the mapping in messages (NULL: the top level). */
int sp_bind_impl(sp_spec *s, const sp_key *keys, int n, unsigned data, const yt_node *map, const char *where,
                 void *dst, ag_error *err);

static inline const char *sp_key_of(const yt_pair *p) { return p->key->text; }

/* An expression at n (a string), parsed into the spec's arena; `what` names it in a
 * message. */
int sp_parse_expr_impl(sp_spec *s, const yt_node *n, const char *what, ex_node **out, ag_error *err);
/* A statement of a step: `name = expr`, `a, b = expr`, or `update OPT: expr`. */
int sp_parse_stmt_impl(sp_spec *s, const yt_node *n, ex_stmt **out, ag_error *err);

/* spec_sample.c: the top level's sample: and schedule: keys. */
int sp_load_sample_impl(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err);
int sp_load_schedule_impl(sp_spec *s, void *dst, const yt_node *map, const yt_node *n, ag_error *err);

#endif
