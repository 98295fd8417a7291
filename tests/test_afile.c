/* test_afile.c — a file replaced whole or not at all (include/aigc/afile.h): a commit
 * replaces it, and every way of failing (a write cut short, one's own failure, a
 * directory in the way of the rename, a missing directory, a long path) leaves the old
 * file byte for byte and no temporary file, with the message "PATH: cannot write: ...". */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/afile.h"
#include "tap.h"
#include "tmpdir.h"

static const char OLD[] = "the previous contents\n";

/* The file holds exactly s. */
static int holds(const char *path, const char *s)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(s) && memcmp(buf, s, n) == 0;
}

static void put_old(const char *path)
{
    FILE *f = fopen(path, "wb");
    fputs(OLD, f);
    fclose(f);
}

static int no_tmp(const char *path)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    return access(tmp, F_OK) != 0;
}

static void test_commit(void)
{
    const char *p = in_tmp("a.txt");
    put_old(p);
    ag_error err = {{0}};
    af_file f;
    int rc = af_begin(&f, p, &err);
    if (rc == AG_OK) rc = af_write(&f, "new ", 4, &err);
    if (rc == AG_OK) fputs("contents\n", f.fp); /* stdio straight to the file works too */
    ok(rc == AG_OK && holds(p, OLD), "until the commit the old file is untouched");
    ok(af_commit(&f, &err) == AG_OK && holds(p, "new contents\n") && no_tmp(p),
       "the commit replaces it whole, no temporary file left");

    /* In two halves, as ck_save does: finished on disk, renamed later. */
    af_begin(&f, p, &err);
    af_write(&f, "third\n", 6, &err);
    ok(af_finish(&f, &err) == AG_OK && holds(p, "new contents\n") && !no_tmp(p),
       "af_finish leaves the complete file under its temporary name");
    ok(af_rename(&f, &err) == AG_OK && holds(p, "third\n") && no_tmp(p), "af_rename puts it in place");
}

static void test_failures(void)
{
    const char *p = in_tmp("b.txt");
    char want[700];
    ag_error err = {{0}};
    af_file f;

    /* A write cut short by the file size limit (a full disk, as far as the writer can
     * tell): af_write fails at once or af_finish's flush does. */
    put_old(p);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 8;
    signal(SIGXFSZ, SIG_IGN);
    static char big[1 << 16];
    memset(big, 'x', sizeof big);
    int rc = af_begin(&f, p, &err);
    setrlimit(RLIMIT_FSIZE, &lim);
    if (rc == AG_OK) rc = af_write(&f, big, sizeof big, &err);
    if (rc == AG_OK) rc = af_commit(&f, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    snprintf(want, sizeof want, "%s: cannot write: File too large", p);
    ok(rc == AG_ERR, "a write past the size limit fails");
    is_str(err.msg, want, "and says why");
    ok(holds(p, OLD) && no_tmp(p), "the old file is untouched and the temporary file gone");

    /* The same through stdio, which fails only when af_finish flushes. */
    rc = af_begin(&f, p, &err);
    setrlimit(RLIMIT_FSIZE, &lim);
    fwrite(big, 1, sizeof big, f.fp);
    if (rc == AG_OK) rc = af_commit(&f, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    ok(rc == AG_ERR, "a stdio write past the size limit fails at the commit");
    is_str(err.msg, want, "and says why");
    ok(holds(p, OLD) && no_tmp(p), "the old file is untouched and the temporary file gone");

    /* The caller's own failure. */
    af_begin(&f, p, &err);
    af_write(&f, "half", 4, &err);
    ok(af_fail(&f, "the encoder gave up", &err) == AG_ERR, "af_fail fails");
    snprintf(want, sizeof want, "%s: cannot write: the encoder gave up", p);
    is_str(err.msg, want, "with the caller's reason");
    ok(holds(p, OLD) && no_tmp(p), "the old file is untouched and the temporary file gone");

    /* A directory where the file should go: the rename fails. */
    const char *d = in_tmp("taken");
    mkdir(d, 0755);
    af_begin(&f, d, &err);
    af_write(&f, "x", 1, &err);
    ok(af_commit(&f, &err) == AG_ERR, "a directory in the way fails the commit");
    snprintf(want, sizeof want, "%s: cannot write: Is a directory", d);
    is_str(err.msg, want, "and says why");
    ok(no_tmp(d), "the temporary file is gone");

    const char *m = in_tmp("missing/c.txt");
    ok(af_begin(&f, m, &err) == AG_ERR, "a missing directory fails at the start");
    snprintf(want, sizeof want, "%s: cannot write: No such file or directory", m);
    is_str(err.msg, want, "and says why");

    static char longpath[5000];
    memset(longpath, 'a', sizeof longpath - 1);
    ok(af_begin(&f, longpath, &err) == AG_ERR, "a path longer than 4095 bytes is refused");
    snprintf(want, sizeof want, "%.64s...: cannot write: the path is too long", longpath);
    is_str(err.msg, want, "with its start in the message");
}

int main(void)
{
    tmp_open("afile");
    test_commit();
    test_failures();
    tmp_close();
    return tap_done();
}
