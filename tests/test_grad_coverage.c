/*
 * test_grad_coverage.c — every op with a backward has a finite-difference gradient
 * check that runs it.
 *
 * The programs whose source includes gradcheck.h are run again with AIGC_GRADCOV set,
 * so that each passing check lists the ops whose backward it ran (tests/gradcheck.h);
 * then the op table is walked, and an op with a backward that no check reached fails
 * here by name. Ops without a backward (leaves, random draws, argmax-like ops) are
 * exempt by their table entry alone.
 */
#include <glob.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aigc/graph.h"
#include "tap.h"
#include "tmpdir.h"

static int includes_gradcheck(const char *source)
{
    FILE *f = fopen(source, "r");
    if (!f) return 0;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, "#include \"gradcheck.h\"", 22) == 0;
    fclose(f);
    return found;
}

/* Runs program with its output discarded; its exit status, or -1. */
static int run_quiet(const char *program)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(program, program, (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* Runs the gradient-check programs, the siblings of this one; marks what they cover. */
static void run_checks(const char *self, int *covered)
{
    const char *slash = strrchr(self, '/');
    int dirlen = slash ? (int)(slash - self) : 1;
    const char *dir = slash ? self : ".";
    glob_t gl;
    int nprog = 0;
    if (glob("tests/test_*.c", 0, NULL, &gl) == 0) {
        for (size_t k = 0; k < gl.gl_pathc; k++) {
            if (!includes_gradcheck(gl.gl_pathv[k])) continue;
            const char *base = gl.gl_pathv[k] + strlen("tests/");
            char program[512];
            snprintf(program, sizeof program, "%.*s/%.*s.t", dirlen, dir,
                     (int)(strlen(base) - 2), base);
            ok(run_quiet(program) == 0, "%s runs its gradient checks", program);
            nprog++;
        }
        globfree(&gl);
    }
    ok(nprog > 0, "the gradient-check programs are found (%d)", nprog);

    FILE *f = fopen(getenv("AIGC_GRADCOV"), "r");
    char line[64];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        ag_op op = ag_op_by_name(line);
        if (op != AG_OP_COUNT) covered[op] = 1;
    }
    if (f) fclose(f);
}

int main(int argc, char **argv)
{
    (void)argc;
    tmp_open("gradcov");
    setenv("AIGC_GRADCOV", in_tmp("ops"), 1);
    int covered[AG_OP_COUNT] = {0};
    run_checks(argv[0], covered);
    for (int op = 0; op < AG_OP_COUNT; op++) {
        const ag_op_def *d = ag_op_defs[op];
        if (d->backward) ok(covered[op], "%s: a gradient check runs its backward", d->name);
    }
    tmp_close();
    return tap_done();
}
