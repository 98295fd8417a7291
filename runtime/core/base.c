/* base.c — asserts, user-facing error messages, checked allocation. */
#include "aigc/base.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Noreturn void ag_assert_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: internal error: assertion '%s' failed\n", file, line, what);
    abort();
}

/* Puts text (len bytes) in msg; when it does not fit, its middle gives way to " ... ",
 * cut between UTF-8 characters. */
static void put_message(char *msg, size_t size, const char *text, size_t len)
{
    static const char gap[] = " ... ";
    if (len < size) {
        memcpy(msg, text, len + 1);
        return;
    }
    size_t head = (size - sizeof gap) / 2, tail = size - sizeof gap - head;
    while (head > 0 && (text[head] & 0xC0) == 0x80) head--;
    const char *end = text + len - tail;
    while (tail > 0 && (*end & 0xC0) == 0x80) end++, tail--;
    memcpy(msg, text, head);
    memcpy(msg + head, gap, sizeof gap - 1);
    memcpy(msg + head + sizeof gap - 1, end, tail + 1);
}

/* Room to format a message that may not fit err->msg, so that put_message keeps its
 * end: on the stack, as an error needs no allocation. */
enum { LONG_MESSAGE = 4 * sizeof(((ag_error *)0)->msg) };

int ag_verrorf(ag_error *err, ag_loc loc, const char *fmt, va_list ap)
{
    char text[LONG_MESSAGE];
    int k = 0;
    if (loc.file) {
        if (loc.line > 0)
            k = snprintf(text, sizeof text, "%s:%d:%d: ", loc.file, loc.line, loc.col);
        else
            k = snprintf(text, sizeof text, "%s: ", loc.file);
        if (k < 0 || (size_t)k >= sizeof text) k = 0;
    }
    int n = vsnprintf(text + k, sizeof text - (size_t)k, fmt, ap);
    size_t len = n < 0 ? (size_t)k : (size_t)k + (size_t)n;
    if (len >= sizeof text) len = sizeof text - 1;
    put_message(err->msg, sizeof err->msg, text, len);
    return AG_ERR;
}

int ag_errorf(ag_error *err, ag_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ag_verrorf(err, loc, fmt, ap);
    va_end(ap);
    return AG_ERR;
}

int ag_error_addf(ag_error *err, const char *fmt, ...)
{
    char text[LONG_MESSAGE];
    size_t used = strlen(err->msg);
    memcpy(text, err->msg, used);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text + used, sizeof text - used, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? used : used + (size_t)n;
    if (len >= sizeof text) len = sizeof text - 1;
    put_message(err->msg, sizeof err->msg, text, len);
    return AG_ERR;
}

static void *oom(size_t n)
{
    fprintf(stderr, "aigc-run: out of memory (asked for %zu bytes)\n", n);
    exit(1); /* a run that cannot go on, like any other run error; 2 is bad usage */
}

void *ag_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *ag_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *ag_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *ag_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(ag_xmalloc(n), s, n);
}

void ag_bytes_put(ag_bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = b->cap * 2 > b->n + n ? b->cap * 2 : b->n + n + 4096;
        b->p = ag_xrealloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

const char *ag_relative_hint(const char *path, char *buf, size_t n)
{
    char cwd[4096];
    buf[0] = 0;
    if (path[0] != '/' && access(path, F_OK) != 0 && getcwd(cwd, sizeof cwd))
        snprintf(buf, n, " (a relative path, read from the current directory %s)", cwd);
    return buf;
}

/* What a file that is not a regular file is, for the message. */
static const char *file_kind(mode_t m)
{
    static const struct {
        mode_t type;
        const char *name;
    } kinds[] = {{S_IFIFO, "a FIFO"}, {S_IFDIR, "a directory"}, {S_IFCHR, "a character device"},
                 {S_IFBLK, "a block device"}, {S_IFSOCK, "a socket"}};
    for (size_t k = 0; k < AG_COUNTOF(kinds); k++)
        if ((m & S_IFMT) == kinds[k].type) return kinds[k].name;
    return "not a file";
}

int ag_open_regular(const char *path, int flags, char *why, size_t n)
{
    /* O_NONBLOCK so that opening a FIFO returns at once; cleared for the reads. */
    int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, n, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, n, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, n, "not a regular file (%s)", file_kind(st.st_mode));
        close(fd);
        errno = EINVAL;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    why[0] = 0;
    return fd;
}

FILE *ag_fopen_regular(const char *path, char *why, size_t n)
{
    int fd = ag_open_regular(path, O_RDONLY, why, n);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(why, n, "%s", strerror(errno));
        close(fd);
    }
    return f;
}

int ag_mkdirs(const char *path, char *failed, size_t n)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(failed, n, "%s", path);
        errno = ENAMETOOLONG;
        return AG_ERR;
    }
    /* A name too long would fail only once the directories above it are made. */
    for (const char *c = buf; *c;) {
        size_t len = strcspn(c, "/");
        if (len > NAME_MAX) {
            snprintf(failed, n, "%.*s", (int)(c - buf + (ptrdiff_t)len), buf);
            errno = ENAMETOOLONG;
            return AG_ERR;
        }
        c += len;
        c += strspn(c, "/");
    }
    for (char *c = buf + 1;; c++) {
        if (*c == '/' || !*c) {
            char keep = *c;
            *c = 0;
            if (mkdir(buf, 0777) != 0) {
                struct stat st;
                /* EEXIST is fine for a directory, not for a file in its way. */
                if (errno == EEXIST && stat(buf, &st) == 0 && !S_ISDIR(st.st_mode)) errno = ENOTDIR;
                if (errno != EEXIST) {
                    int saved = errno;
                    snprintf(failed, n, "%s", buf);
                    errno = saved;
                    return AG_ERR;
                }
            }
            *c = keep;
            if (!keep) break;
        }
    }
    return AG_OK;
}

int ag_mkdirs_or_error(const char *path, const char *what, ag_error *err)
{
    char failed[4096];
    if (ag_mkdirs(path, failed, sizeof failed) == AG_OK) return AG_OK;
    const char *why = strerror(errno);
    if (strcmp(failed, path) != 0)
        return ag_errorf(err, (ag_loc){0}, "%s: cannot create %s: %s: %s", path, what, failed, why);
    return ag_errorf(err, (ag_loc){0}, "%s: cannot create %s: %s", path, what, why);
}

uint64_t ag_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t k = 0; k < n; k++) h = (h ^ b[k]) * 0x100000001b3ull;
    return h;
}
