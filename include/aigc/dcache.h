/*
 * dcache.h — the cache of inflated data files (prefix dc_).
 *
 * Inflating Fashion-MNIST's 47 MB of training images takes zlib about 0.2 s on one
 * thread, at every run, every `check` and every `sample`; reading them back raw takes
 * a tenth of that. So the first load of a gzip file of at least DC_MIN_BYTES inflated
 * leaves its bytes in the cache, and later loads read them from there:
 *
 *     dc_entry e;
 *     if (dc_find(path, &e)) {            // the cache is on: e names path's entry
 *         size_t n;
 *         const uint8_t *b = dc_map(&e, &n);  // NULL: no entry yet (or a damaged one)
 *         ...                             // use the n bytes, then dc_unmap(b, n)
 *     }
 *     ...                                 // inflate path as before, then
 *     dc_store(&e, parts, sizes, 2);      // best effort, silent
 *
 * Where: $AIGC_CACHE, else $XDG_CACHE_HOME/aigc-run, else $HOME/.cache/aigc-run;
 * AIGC_CACHE=off turns it off. An entry is named after the source's real path and its
 * identity (device, inode, size, modification and change times), so that a source
 * replaced or rewritten in place gets a new entry, and storing it removes the source's
 * older ones: one entry per source, which the directory may lose at any time. An entry
 * begins with a header that holds the CRC-32 of its bytes, so that one damaged by a
 * crash or a full disk is read again from the source instead of trusted. An entry is
 * mapped, not read: reading 47 MB into fresh memory takes about 49 ms, faulting in and
 * copying every page, where the mapping costs only the CRC's pass over the page cache.
 */
#ifndef AIGC_DCACHE_H
#define AIGC_DCACHE_H

#include <stddef.h>
#include <stdint.h>

/* Below this, inflating costs less than the entry's file would save. */
#define DC_MIN_BYTES ((int64_t)1 << 20)

typedef struct dc_entry {
    char path[4096];  /* DIR/SOURCEHASH-IDENTITYHASH-NAME */
    size_t prefix;    /* the length of DIR/SOURCEHASH-, which every entry of the source shares */
} dc_entry;

/* 1 when the cache is on and source (a file that exists) has an entry name in e; 0 when
 * the cache is off, no directory can be named or source cannot be resolved. */
int dc_find(const char *source, dc_entry *e);

/* e's entry's bytes (past its header), *n of them, mapped read-only and checked
 * against the CRC-32 the header holds; NULL when there is no entry, its header is not
 * this version's or its bytes are not those written (a miss: read the source). Entries
 * are replaced by rename, never rewritten in place, so a mapping stays whole while
 * another run stores or prunes. */
const uint8_t *dc_map(const dc_entry *e, size_t *n);
void dc_unmap(const uint8_t *bytes, size_t n);

/* Writes the nparts pieces as e's entry (a file of its own, renamed into place, so that
 * concurrent runs each see a whole entry or none) and removes the source's older
 * entries. A cache that cannot be written is no error: nothing is reported. */
void dc_store(const dc_entry *e, const void *const *parts, const size_t *sizes, int nparts);

#endif
