/*
 * dcache.c — the cache of inflated data files (see dcache.h).
 */
#include "aigc/dcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aigc/base.h"

/* An entry's header: this magic (its last two bytes the format's version), the bytes'
 * CRC-32 little-endian, four zero bytes. */
static const unsigned char dc_magic[8] = {'a', 'i', 'g', 'c', 'c', 'a', '0', '1'};
#define DC_HEAD 16

static int dc_dir(char *buf, size_t n)
{
    const char *own = getenv("AIGC_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (own && !strcmp(own, "off")) return 0;
    if (own && *own)
        len = snprintf(buf, n, "%s", own);
    else if (xdg && xdg[0] == '/') /* the XDG spec: a relative XDG_CACHE_HOME is ignored */
        len = snprintf(buf, n, "%s/aigc-run", xdg);
    else if (home && *home)
        len = snprintf(buf, n, "%s/.cache/aigc-run", home);
    else
        return 0;
    return len > 0 && (size_t)len < n;
}

int dc_find(const char *source, dc_entry *e)
{
    char dir[2048], real[PATH_MAX];
    struct stat st;
    if (!dc_dir(dir, sizeof dir) || !realpath(source, real) || stat(real, &st) != 0) return 0;
    /* What changes when the file is replaced (device, inode) or rewritten: its size and
     * times, the change time even when `cp -p` or `touch -r` put the old mtime back. */
    int64_t id[] = {(int64_t)st.st_dev, (int64_t)st.st_ino, (int64_t)st.st_size,
                    st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
    unsigned long long where = ag_fnv1a(AG_FNV_BASIS, real, strlen(real)),
                       what = ag_fnv1a(AG_FNV_BASIS, id, sizeof id);
    const char *name = strrchr(real, '/') + 1;
    int len = (int)strlen(name);
    if (len > 3 && !strcmp(name + len - 3, ".gz")) len -= 3;
    int k = snprintf(e->path, sizeof e->path, "%s/%016llx-", dir, where);
    if (k < 0 || (size_t)k >= sizeof e->path) return 0;
    e->prefix = (size_t)k;
    int m = snprintf(e->path + k, sizeof e->path - (size_t)k, "%016llx-%.*s", what, len, name);
    return m > 0 && (size_t)(k + m) < sizeof e->path;
}

/* An entry this large has its CRC taken in two halves, the second on a thread of its
 * own, joined by crc32_combine: one thread takes 25 ms over Fashion-MNIST's 47 MB of
 * training images, the whole cost of loading them from the cache. */
#define DC_SPLIT_BYTES ((size_t)8 << 20)

typedef struct dc_half {
    const unsigned char *p;
    size_t n;
    uLong crc;
} dc_half;

static void *dc_crc_half(void *arg)
{
    dc_half *h = arg;
    h->crc = crc32_z(crc32_z(0, NULL, 0), h->p, h->n);
    return NULL;
}

static uLong dc_crc(const unsigned char *p, size_t n)
{
    dc_half second = {p + n / 2, n - n / 2, 0};
    pthread_t t;
    if (n < DC_SPLIT_BYTES || pthread_create(&t, NULL, dc_crc_half, &second) != 0)
        return crc32_z(crc32_z(0, NULL, 0), p, n);
    uLong first = crc32_z(crc32_z(0, NULL, 0), p, n / 2);
    pthread_join(t, NULL);
    return crc32_combine(first, second.crc, (z_off_t)second.n);
}

const uint8_t *dc_map(const dc_entry *e, size_t *n)
{
    char why[128];
    int fd = ag_open_regular(e->path, O_RDONLY, why, sizeof why);
    struct stat st;
    if (fd < 0) return NULL;
    if (fstat(fd, &st) != 0 || st.st_size < DC_HEAD) {
        close(fd);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    const unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return NULL;
    uint32_t crc = (uint32_t)m[8] | (uint32_t)m[9] << 8 | (uint32_t)m[10] << 16 | (uint32_t)m[11] << 24;
    if (memcmp(m, dc_magic, sizeof dc_magic) != 0 || dc_crc(m + DC_HEAD, len - DC_HEAD) != crc) {
        munmap((void *)m, len);
        return NULL;
    }
    *n = len - DC_HEAD;
    return m + DC_HEAD;
}

void dc_unmap(const uint8_t *bytes, size_t n)
{
    munmap((void *)(bytes - DC_HEAD), n + DC_HEAD);
}

static int dc_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        c += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Removes every file of e's source but e's entry: older entries, and what a writer that
 * was killed half way left. */
static void dc_prune(const dc_entry *e, size_t dir_len)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)dir_len, e->path);
    /* The entry's name, whose first plen bytes are the source's hash and a dash. */
    const char *name = e->path + dir_len + 1;
    size_t plen = e->prefix - dir_len - 1;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));)
        if (!strncmp(de->d_name, name, plen) && strcmp(de->d_name, name) != 0) unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

void dc_store(const dc_entry *e, const void *const *parts, const size_t *sizes, int nparts)
{
    char dir[4096], failed[4096], tmp[4096 + 16];
    size_t dir_len = (size_t)(strrchr(e->path, '/') - e->path);
    snprintf(dir, sizeof dir, "%.*s", (int)dir_len, e->path);
    if (ag_mkdirs(dir, failed, sizeof failed) != AG_OK) return;
    /* The temporary file starts with the source's prefix: dc_prune removes it if this
     * process dies before the rename. */
    snprintf(tmp, sizeof tmp, "%.*stmp-XXXXXX", (int)e->prefix, e->path);
    int fd = mkstemp(tmp);
    if (fd < 0) return;
    uLong crc = crc32_z(0, NULL, 0);
    for (int k = 0; k < nparts; k++) crc = crc32_z(crc, parts[k], sizes[k]);
    unsigned char head[DC_HEAD] = {0};
    memcpy(head, dc_magic, sizeof dc_magic);
    for (int b = 0; b < 4; b++) head[8 + b] = (unsigned char)(crc >> 8 * b);
    int ok = dc_write_all(fd, head, DC_HEAD);
    for (int k = 0; k < nparts && ok; k++) ok = dc_write_all(fd, parts[k], sizes[k]);
    /* No fsync: an entry a crash cuts short fails its CRC and is written again. */
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, e->path) != 0) {
        unlink(tmp);
        return;
    }
    dc_prune(e, dir_len);
}
