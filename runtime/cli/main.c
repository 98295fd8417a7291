/* main.c — the aigc-run command line. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/program.h"
#include "aigc/spec.h"
#include "aigc/train.h"

/* Exit codes: 0 done, 1 a problem with the spec, the data or the run, 2 bad usage. */
enum { EXIT_USAGE = 2 };

static const char usage[] =
    "usage: aigc-run [train] SPEC [options]     train the models of a spec\n"
    "       aigc-run check SPEC [options]       validate a spec; print models, shapes,\n"
    "                                           parameter counts and FLOPs per sample\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE   override a spec value, like --set train.epochs=5 (repeatable)\n"
    "  --epochs N        the same as --set train.epochs=N\n"
    "  --seed N          the same as --set seed=N\n"
    "  --out DIR         write the run here instead of runs/NAME\n"
    "  --threads N       BLAS threads (default 1: the same results on every machine)\n"
    "  --progress MODE   bar, lines or auto (default: a bar on a terminal)\n"
    "  -h, --help        this text\n"
    "  --version         the version\n";

typedef struct cli_args {
    const char *command;
    const char *spec;
    sp_set sets[64];
    int nsets;
    const char *out;
    int threads;
    int progress;
} cli_args;

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "aigc-run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'aigc-run --help'.\n");
    return EXIT_USAGE;
}

static int parse_int_arg(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi) {
        fprintf(stderr, "aigc-run: %s expects a whole number in [%ld, %ld], got '%s'\nTry 'aigc-run --help'.\n",
                opt, lo, hi, v);
        return -1;
    }
    *out = n;
    return 0;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, cli_args *a, char *setbuf, size_t setbuf_len)
{
    memset(a, 0, sizeof *a);
    a->threads = 1;
    a->progress = -1;
    a->command = "train";
    size_t used = 0;
    for (int k = 1; k < argc; k++) {
        const char *s = argv[k];
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(s, "--version")) {
            printf("aigc-run %s\n", AIGC_VERSION);
            return 0;
        }
        if (s[0] == '-' && s[1]) {
            static const char *const with_value[] = {"--set", "--epochs", "--seed", "--out", "--threads", "--progress"};
            int known = 0;
            for (size_t j = 0; j < AG_COUNTOF(with_value); j++) known |= !strcmp(s, with_value[j]);
            if (!known) return bad_usage("unknown option '%s'", s);
            if (!v) return bad_usage("%s needs a value", s);
            k++;
            if (a->nsets == (int)AG_COUNTOF(a->sets)) return bad_usage("too many overrides (%s)", s);
            long n;
            if (!strcmp(s, "--set")) {
                a->sets[a->nsets++].text = v;
            } else if (!strcmp(s, "--epochs") || !strcmp(s, "--seed")) {
                if (parse_int_arg(s, v, !strcmp(s, "--seed") ? 0 : 1, !strcmp(s, "--seed") ? LONG_MAX : 1000000, &n))
                    return EXIT_USAGE;
                int len = snprintf(setbuf + used, setbuf_len - used, "%s=%ld",
                                   !strcmp(s, "--seed") ? "seed" : "train.epochs", n);
                a->sets[a->nsets++].text = setbuf + used;
                used += (size_t)len + 1;
            } else if (!strcmp(s, "--out")) {
                a->out = v;
            } else if (!strcmp(s, "--threads")) {
                if (parse_int_arg(s, v, 1, 256, &n)) return EXIT_USAGE;
                a->threads = (int)n;
            } else {
                if (!strcmp(v, "bar")) a->progress = 1;
                else if (!strcmp(v, "lines")) a->progress = 0;
                else if (!strcmp(v, "auto")) a->progress = -1;
                else return bad_usage("--progress takes bar, lines or auto, not '%s'", v);
            }
            continue;
        }
        /* The command comes first; a spec file named "check" is ./check. */
        if (k == 1 && (!strcmp(s, "check") || !strcmp(s, "train"))) {
            a->command = s;
            continue;
        }
        if (a->spec) return bad_usage("unexpected argument '%s'", s);
        a->spec = s;
    }
    if (!a->spec) return bad_usage("%s", "no spec given");
    return -1;
}

static int fail(const ag_error *err, const sp_spec *s)
{
    ag_error e = *err;
    if (s) yt_annotate(&e, &s->doc);
    fprintf(stderr, "%s\n", e.msg);
    return 1;
}

int main(int argc, char **argv)
{
    cli_args a;
    char setbuf[1024];
    int rc = parse_args(argc, argv, &a, setbuf, sizeof setbuf);
    if (rc >= 0) return rc;
    ag_set_threads(a.threads);

    sp_spec s;
    ag_error err;
    if (sp_load(&s, a.spec, a.sets, a.nsets, &err)) {
        rc = fail(&err, &s);
        sp_free(&s);
        return rc;
    }
    tr_data d;
    if (tr_load_data(&s, &d, &err)) {
        rc = fail(&err, &s);
        sp_free(&s);
        return rc;
    }
    pg_program p;
    rc = 0;
    if (pg_build(&p, &s, d.train.rows, d.train.cols, d.train.classes, &err)) {
        rc = fail(&err, &s);
    } else if (!strcmp(a.command, "check")) {
        pg_print_summary(&p, stdout);
    } else {
        tr_options o = {.out_dir = a.out, .progress = a.progress};
        if (tr_run(&p, &d, &o, &err)) rc = fail(&err, &s);
    }
    pg_free(&p);
    tr_free_data(&d);
    sp_free(&s);
    return rc;
}
