/*
 * base.h — what every module of aigc-run shares: the assert macro for programmer
 * mistakes, the status type for user mistakes, and source locations.
 *
 * Two kinds of failure, two mechanisms:
 *   - A user mistake (a bad spec, a missing file) is returned as AG_ERR with a message
 *     in an `ag_error`; the message starts with `file:line:col: ` when there is a place.
 *   - A programmer mistake (a broken invariant) aborts through AG_ASSERT, which prints
 *     the C file and line. It is never used to validate user input.
 */
#ifndef AIGC_BASE_H
#define AIGC_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AIGC_VERSION "0.1.0"

#define AG_OK 0
#define AG_ERR (-1)

#define AG_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) ag_assert_fail(__FILE__, __LINE__, #cond);                \
    } while (0)

_Noreturn void ag_assert_fail(const char *file, int line, const char *what);

#define AG_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* For the loops that run over every element at every step (Adam, the activations, the
 * losses): compiled for AVX-512, AVX2 and any x86-64, the one to run chosen when the
 * program loads. 16 or 8 lanes instead of 4, with the same bits: no FMA, and -std=c11
 * keeps GCC from contracting a multiply and an add. AVX-512 over AVX2 made a VAE
 * Fashion-MNIST run 10 % faster (Adam's square roots and divisions, bce's logs); the
 * GAN's, whose Adam waits on memory, not measurably. Under valgrind, which has no
 * AVX-512, the AVX2 clone runs. */
#if defined(__x86_64__)
#define AG_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AG_SIMD_CLONES
#endif

/* A place in a user's file. line and col are 1-based (libyaml's marks are 0-based:
 * the spec loader adds 1). file == NULL means "no place". */
typedef struct ag_loc {
    const char *file;
    int line, col;
} ag_loc;

/* One user-facing error message. Fixed size so that reporting an error never
 * needs an allocation (it may be the allocation that failed). Room for a path of
 * PATH_MAX and its reason; a longer message loses its middle, never its end, where the
 * reason and the way out are. */
typedef struct ag_error {
    char msg[6144];
} ag_error;

/* Formats into err->msg, prefixed with "file:line:col: " when loc has a file.
 * Returns AG_ERR so that callers can `return ag_errorf(...)`. */
int ag_errorf(ag_error *err, ag_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ag_verrorf(ag_error *err, ag_loc loc, const char *fmt, va_list ap);
/* Adds to err's message what the caller knows and the code that made it did not (the
 * run, the section, the option). Returns AG_ERR. */
int ag_error_addf(ag_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For a path that could not be opened: when it is relative and not there, buf gets
 * " (a relative path, read from the current directory DIR)", else "". Returns buf. */
const char *ag_relative_hint(const char *path, char *buf, size_t n);

/* Opens path with flags (O_RDONLY and the like) when it is a regular file. A FIFO, a
 * device or a directory is refused without blocking in open() (a FIFO with no writer
 * would block forever). Returns the descriptor, or -1 with why[n] set to the reason:
 * strerror(errno), or "not a regular file (a FIFO)" and the like. */
int ag_open_regular(const char *path, int flags, char *why, size_t n);
/* The same for reading with stdio: a FILE open for "rb", or NULL with why set. */
FILE *ag_fopen_regular(const char *path, char *why, size_t n);

/* mkdir -p: path and each missing directory above it. On failure returns AG_ERR with
 * errno set and the directory that could not be made in failed (n bytes). */
int ag_mkdirs(const char *path, char *failed, size_t n);
/* ag_mkdirs, its failure an error for the user: "PATH: cannot create WHAT: REASON", with
 * the directory above PATH that could not be made (or a file in its way) before REASON. */
int ag_mkdirs_or_error(const char *path, const char *what, ag_error *err);

/* FNV-1a, 64 bits, for names made from contents (a spec's text, a cached file's
 * source): start from AG_FNV_BASIS and feed the pieces in turn. */
#define AG_FNV_BASIS 0xcbf29ce484222325ull
uint64_t ag_fnv1a(uint64_t h, const void *p, size_t n);

/* Allocation that cannot fail silently: aborts with a message on out-of-memory.
 * Only for setup-time allocations; the training loop allocates nothing. */
void *ag_xmalloc(size_t n);
void *ag_xcalloc(size_t n, size_t size);
void *ag_xrealloc(void *p, size_t n);
char *ag_xstrdup(const char *s);

/* A growable run of bytes, for a file's contents put together in memory before it is
 * written (a checkpoint's state, a safetensors header). Starts zeroed; free(b.p). */
typedef struct ag_bytes {
    unsigned char *p;
    size_t n, cap;
} ag_bytes;

void ag_bytes_put(ag_bytes *b, const void *src, size_t n);

#endif
