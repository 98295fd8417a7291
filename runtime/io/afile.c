/* afile.c — a file replaced whole or not at all (include/aigc/afile.h). */
#include "aigc/afile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void af_abort(af_file *f)
{
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    unlink(f->tmp);
}

int af_fail(af_file *f, const char *reason, ag_error *err)
{
    af_abort(f);
    return ag_errorf(err, (ag_loc){0}, "%s: cannot write: %s", f->path, reason);
}

/* errno's reason, taken before af_abort's calls can change it; EIO when a stdio error
 * left none. */
static int fail_errno(af_file *f, ag_error *err)
{
    int e = errno ? errno : EIO;
    return af_fail(f, strerror(e), err);
}

int af_begin(af_file *f, const char *path, ag_error *err)
{
    memset(f, 0, sizeof *f);
    size_t n = strlen(path);
    if (n >= sizeof f->path)
        return ag_errorf(err, (ag_loc){0}, "%.64s...: cannot write: the path is too long", path);
    memcpy(f->path, path, n + 1);
    memcpy(f->tmp, path, n);
    memcpy(f->tmp + n, ".tmp", 5);
    errno = 0;
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) return ag_errorf(err, (ag_loc){0}, "%s: cannot write: %s", path, strerror(errno));
    return AG_OK;
}

int af_write(af_file *f, const void *p, size_t n, ag_error *err)
{
    AG_ASSERT(f->fp);
    errno = 0;
    if (n && fwrite(p, 1, n, f->fp) != n) return fail_errno(f, err);
    return AG_OK;
}

int af_finish(af_file *f, ag_error *err)
{
    AG_ASSERT(f->fp);
    /* A stdio write that failed earlier (fprintf, fputc) left its reason in errno,
     * unless something since has changed it. */
    if (ferror(f->fp)) return fail_errno(f, err);
    errno = 0;
    /* fsync before the rename, or a power cut can leave the new name on an empty file. */
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0) return fail_errno(f, err);
    FILE *fp = f->fp;
    f->fp = NULL;
    if (fclose(fp) != 0) return fail_errno(f, err);
    return AG_OK;
}

/* The rename is durable once the directory that holds the name is on disk. A failure
 * here leaves the complete file under its new name, so it is not reported. */
static void sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int af_rename(af_file *f, ag_error *err)
{
    AG_ASSERT(!f->fp);
    errno = 0;
    if (rename(f->tmp, f->path) != 0) return fail_errno(f, err);
    sync_dir(f->path);
    return AG_OK;
}

int af_commit(af_file *f, ag_error *err)
{
    if (af_finish(f, err) != AG_OK) return AG_ERR;
    return af_rename(f, err);
}
