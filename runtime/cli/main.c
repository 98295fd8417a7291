/* main.c — the aigc-run command line. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aigc/afile.h"
#include "aigc/blas.h"
#include "aigc/ckpt.h"
#include "aigc/dist.h"
#include "aigc/encode.h"
#include "aigc/hooks.h"
#include "aigc/metrics.h"
#include "aigc/pool.h"
#include "aigc/program.h"
#include "aigc/quality.h"
#include "aigc/report.h"
#include "aigc/sample.h"
#include "aigc/spec.h"
#include "aigc/suggest.h"
#include "aigc/train.h"
#include "check.h"

/* Exit codes: 0 done, 1 a problem with the spec, the data or the run, 2 bad usage. */
enum { EXIT_USAGE = 2 };

static const char usage[] =
    "usage: aigc-run [train] SPEC [options]     train the models of a spec\n"
    "       aigc-run check SPEC [options]       validate a spec; print models, shapes,\n"
    "                                           parameter counts, FLOPs per sample and\n"
    "                                           the memory planned\n"
    "       aigc-run sample SPEC [--checkpoint F] [-n N] [-o FILE.png] [--seed S]\n"
    "                                           draw the spec's sample: section\n"
    "       aigc-run sample SPEC [--checkpoint F] -n N --format idx -o DIR\n"
    "                                           N images as a data set's training\n"
    "                                           split in DIR (data.path reads it)\n"
    "       aigc-run eval SPEC [--checkpoint F] [--json]\n"
    "                                           the logged values over the test split\n"
    "                                           (and the accuracy of a classifier)\n"
    "       aigc-run eval SPEC [--checkpoint F] --quality CSPEC[:CF] [-n N] [--json]\n"
    "                                           sample quality: N images of a sample:\n"
    "                                           section, measured with classifier CSPEC\n"
    "                                           (weights CF, default runs/NAME/last)\n"
    "       aigc-run encode SPEC [--checkpoint F] [--section NAME] -o DIR\n"
    "                                           a features section over the training\n"
    "                                           and test splits: float IDX files and\n"
    "                                           labels in DIR (a features data set),\n"
    "                                           and DIR/scatter.png\n"
    "       aigc-run report DIR [DIR ...] [-o FILE.html]\n"
    "                                           a run's report page again (DIR/report.html),\n"
    "                                           or several runs overlaid (default:\n"
    "                                           report.html)\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE     override a spec value, like --set train.epochs=5 (repeatable)\n"
    "  --epochs N          the same as --set train.epochs=N\n"
    "  --seed N            the same as --set seed=N\n"
    "  --out DIR           write the run here instead of runs/NAME\n"
    "  --resume [DIR|F]    continue a run exactly: from DIR/last (default: the run's\n"
    "                      directory) or from checkpoint F\n"
    "  --init F            start training from the weights in F (safetensors)\n"
    "  --checkpoint F      the weights for sample, eval and encode (default: runs/NAME/last): a run\n"
    "                      directory (its last), a checkpoint with or without its ending,\n"
    "                      or a safetensors file\n"
    "  -n N                sample: how many to draw (n in the section's expressions);\n"
    "                      eval --quality: how many to measure (default: the test split's)\n"
    "  --quality CSPEC[:CF]\n"
    "                      eval: the Frechet distance of the classifier's features to the\n"
    "                      test split's, the classifier score and the class histogram\n"
    "  -o FILE             sample: where to write the grid (default: samples.png), or a\n"
    "                      text section's texts (default: stdout), or with --format idx\n"
    "                      the directory of the IDX files; encode: the directory\n"
    "  --format FORMAT     sample: png (default), a grid; or idx, IDX files of the\n"
    "                      images (and of their classes, for a section with label:)\n"
    "  --section NAME      sample, eval --quality: which section of sample: (default:\n"
    "                      the first); encode: which features section (default: the\n"
    "                      first)\n"
    "  --input NAME=VALUE  set an input of the sample sections (a number, or a PNG for\n"
    "                      an image input), of --section's only when given (repeatable)\n"
    "  --prompt TEXT       the same as --input prompt=TEXT (text models)\n"
    "  --length N          the same as --input length=N\n"
    "  --temperature T     the same as --input temperature=T\n"
    "  --inpaint IMAGE.png the same as --input picture=IMAGE.png, and for sample\n"
    "                      --section inpaint unless --section is given (diffusion)\n"
    "  --mask MASK.png     the same as --input mask=MASK.png: white is filled in\n"
    "  --json              eval: one JSON object instead of lines\n"
    "  --threads N         threads in all, 1 to 16, for sgemm, element-wise ops, updates\n"
    "                      (default 1: the same results whatever the core count)\n"
    "  --backend NAME      the compute library of the matrix products and convolutions:\n"
    "                      onednn (the default where built) or openblas\n"
    "  --max-memory MB     refuse a spec that plans more (default: 80% of physical memory)\n"
    "  --progress MODE     bar, lines or auto (default: a bar on a terminal)\n"
    "  --unsafe-hooks      let the spec's Lua hooks use io and os\n"
    "  --hook-errors MODE  fail (default: save a checkpoint and stop) or warn (go on)\n"
    "  -h, --help          this text\n"
    "  --version           the version\n"
    "\n"
    "Environment:\n"
    "  AIGC_BACKEND        the backend when --backend is not given\n"
    "  AIGC_CACHE          where inflated gzip data is kept for the next run (default:\n"
    "                      $XDG_CACHE_HOME/aigc-run, else ~/.cache/aigc-run), or off\n"
    "\n"
    "Under Open MPI's mpirun (mpirun -np N aigc-run SPEC), training is data-parallel:\n"
    "each rank runs its share of every batch, rank 0 writes (docs/scaling.md).\n";

/* The commands, in this order, and as bits: the command given, and those an option is
 * for. */
static const char *const commands[] = {"train", "check", "sample", "eval", "encode"};
enum { C_TRAIN = 1, C_CHECK = 2, C_SAMPLE = 4, C_EVAL = 8, C_ENCODE = 16, C_ALL = 31 };

typedef struct cli_args {
    unsigned command;          /* one of the C_ bits */
    const char *spec;
    sp_set sets[64];
    int nsets;
    sp_set inputs[SP_MAX_SAMPLE_INPUTS];
    int ninputs;
    char setbuf[1024];
    size_t setused;
    char inputbuf[16384];      /* NAME=VALUE of --prompt, --length, --temperature,
                                * --inpaint and --mask */
    int inpaint;               /* --inpaint or --mask: sample the section inpaint */
    size_t inputused;
    const char *out, *resume, *init, *checkpoint, *image, *section, *backend;
    int format;                /* sample --format: an index into formats */
    const char *count_text;    /* -n as typed, for the limit of a grid */
    char quality_spec[4096];   /* --quality CSPEC[:CF], split */
    const char *quality, *quality_weights;
    int threads, progress, json, unsafe_hooks, warn_hooks, count;
    int64_t max_memory;
    char command_line[8192];   /* as typed, for the run's report */
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

/* An override made from an option: --epochs 5 is --set train.epochs=5. */
static int add_set(cli_args *a, const char *key, long n)
{
    if (a->nsets == (int)AG_COUNTOF(a->sets)) return bad_usage("too many overrides (%s)", key);
    int len = snprintf(a->setbuf + a->setused, sizeof a->setbuf - a->setused, "%s=%ld", key, n);
    a->sets[a->nsets++].text = a->setbuf + a->setused;
    a->setused += (size_t)len + 1;
    return -1;
}

typedef enum cli_opt {
    O_SET, O_EPOCHS, O_SEED, O_OUT, O_THREADS, O_PROGRESS, O_RESUME, O_INIT, O_CHECKPOINT, O_COUNT,
    O_IMAGE, O_JSON, O_UNSAFE_HOOKS, O_HOOK_ERRORS, O_SECTION, O_MAX_MEMORY, O_QUALITY,
    O_INPUT, O_PROMPT, O_LENGTH, O_TEMPERATURE, O_INPAINT, O_MASK, O_BACKEND, O_FORMAT
} cli_opt;

/* sample --format: what it writes. */
static const char *const formats[] = {"png", "idx"};
enum { F_PNG, F_IDX };

static const struct {
    const char *name;
    cli_opt opt;
    int value;       /* 1: takes a value; 2: an optional one */
    unsigned cmds;   /* the commands that use it: another one reports it */
    const char *hint; /* added to that report */
} options[] = {
    {"--set", O_SET, 1, C_ALL, NULL},
    {"--epochs", O_EPOCHS, 1, C_ALL, NULL},
    {"--seed", O_SEED, 1, C_ALL, NULL},
    {"--out", O_OUT, 1, C_TRAIN, NULL},
    {"--threads", O_THREADS, 1, C_ALL, NULL},
    {"--backend", O_BACKEND, 1, C_ALL, NULL},
    {"--progress", O_PROGRESS, 1, C_TRAIN, NULL},
    {"--resume", O_RESUME, 2, C_TRAIN, NULL},
    {"--init", O_INIT, 1, C_TRAIN, NULL},
    {"--checkpoint", O_CHECKPOINT, 1, C_SAMPLE | C_EVAL | C_ENCODE, "; to continue training use --resume"},
    {"-n", O_COUNT, 1, C_SAMPLE | C_EVAL, NULL},
    {"-o", O_IMAGE, 1, C_SAMPLE | C_ENCODE, NULL},
    {"--format", O_FORMAT, 1, C_SAMPLE, NULL},
    {"--json", O_JSON, 0, C_EVAL, NULL},
    {"--unsafe-hooks", O_UNSAFE_HOOKS, 0, C_TRAIN | C_CHECK, NULL},
    {"--hook-errors", O_HOOK_ERRORS, 1, C_TRAIN, NULL},
    {"--section", O_SECTION, 1, C_SAMPLE | C_EVAL | C_ENCODE, NULL},
    {"--max-memory", O_MAX_MEMORY, 1, C_ALL, NULL},
    {"--quality", O_QUALITY, 1, C_EVAL, NULL},
    /* Inputs reach the sections drawn after each epoch, and check checks them. */
    {"--input", O_INPUT, 1, C_ALL, NULL},
    {"--prompt", O_PROMPT, 1, C_ALL, NULL},
    {"--length", O_LENGTH, 1, C_ALL, NULL},
    {"--temperature", O_TEMPERATURE, 1, C_ALL, NULL},
    {"--inpaint", O_INPAINT, 1, C_ALL, NULL},
    {"--mask", O_MASK, 1, C_ALL, NULL},
};

/* "OPTION is for train and check": an option given to a command that would not use it. */
static int not_for(const char *option, unsigned cmds, const char *hint)
{
    char list[64] = "";
    int n = 0, total = 0;
    for (unsigned m = cmds; m; m &= m - 1) total++;
    for (size_t k = 0; k < AG_COUNTOF(commands); k++) {
        if (!(cmds >> k & 1u)) continue;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", n == 0 ? "" : n == total - 1 ? " and " : ", ", commands[k]);
        n++;
    }
    fprintf(stderr, "aigc-run: %s is for %s%s\nTry 'aigc-run --help'.\n", option, list, hint ? hint : "");
    return EXIT_USAGE;
}

static int is_spec_path(const char *s);

/* What a spec needs for the options that stand for --input, said when it lacks it. */
static const char TEXT_INPUTS[] = "--prompt, --length and --temperature are for a text spec's "
                                  "sample section, like specs/char-gpt.yaml's";
static const char INPAINT_INPUTS[] = "--inpaint and --mask are for a diffusion spec's inpainting "
                                     "section, like specs/ddpm.yaml's 'inpaint'";

/* --prompt TEXT (the option as typed) is --input prompt=TEXT; likewise --length,
 * --temperature, --inpaint (picture) and --mask. */
static int add_input(cli_args *a, const char *option, const char *input, const char *v,
                     const char *needs)
{
    if (a->ninputs == (int)AG_COUNTOF(a->inputs)) return bad_usage("too many inputs (%s)", option);
    size_t left = sizeof a->inputbuf - a->inputused;
    int len = snprintf(a->inputbuf + a->inputused, left, "%s=%s", input, v);
    if (len < 0 || (size_t)len >= left) return bad_usage("%s: the value is too long", option);
    a->inputs[a->ninputs++] = (sp_set){a->inputbuf + a->inputused, option, needs};
    a->inputused += (size_t)len + 1;
    return -1;
}

static int set_option(cli_args *a, cli_opt opt, const char *name, const char *v)
{
    long n;
    switch (opt) {
    case O_SET:
        if (a->nsets == (int)AG_COUNTOF(a->sets)) return bad_usage("too many overrides (%s)", name);
        a->sets[a->nsets++].text = v;
        return -1;
    case O_EPOCHS:
        return parse_int_arg(name, v, 1, 1000000, &n) ? EXIT_USAGE : add_set(a, "train.epochs", n);
    case O_SEED: return parse_int_arg(name, v, 0, LONG_MAX, &n) ? EXIT_USAGE : add_set(a, "seed", n);
    case O_COUNT:
        /* eval --quality and sample --format idx draw in pieces of any count; a grid
         * is one draw (parse_args checks its limit once --format is known). */
        if (parse_int_arg(name, v, 1, 1000000, &n)) return EXIT_USAGE;
        a->count = (int)n;
        a->count_text = v;
        return -1;
    case O_FORMAT:
        for (a->format = 0; a->format < (int)AG_COUNTOF(formats); a->format++)
            if (!strcmp(v, formats[a->format])) return -1;
        return bad_usage("--format takes png or idx, not '%s'", v);
    case O_SECTION: a->section = v; return -1;
    case O_INPUT:
        if (a->ninputs == (int)AG_COUNTOF(a->inputs)) return bad_usage("too many inputs (%s)", name);
        a->inputs[a->ninputs++] = (sp_set){v, NULL, NULL};
        return -1;
    case O_PROMPT: return add_input(a, name, "prompt", v, TEXT_INPUTS);
    case O_LENGTH: return add_input(a, name, "length", v, TEXT_INPUTS);
    case O_TEMPERATURE: return add_input(a, name, "temperature", v, TEXT_INPUTS);
    case O_INPAINT:
    case O_MASK:
        a->inpaint = 1;
        return add_input(a, name, opt == O_INPAINT ? "picture" : "mask", v, INPAINT_INPUTS);
    case O_MAX_MEMORY:
        if (parse_int_arg(name, v, 1, 1L << 30, &n)) return EXIT_USAGE;
        a->max_memory = (int64_t)n << 20;
        return -1;
    case O_QUALITY: {
        /* CSPEC:CF: the spec ends in .yaml or .yml, so a colon after that splits. */
        if (snprintf(a->quality_spec, sizeof a->quality_spec, "%s", v) >= (int)sizeof a->quality_spec)
            return bad_usage("--quality: '%s' is too long", v);
        a->quality = a->quality_spec;
        char *colon = strrchr(a->quality_spec, ':');
        if (colon) {
            *colon = 0;
            if (is_spec_path(a->quality_spec)) a->quality_weights = colon + 1;
            else *colon = ':';
        }
        if (!is_spec_path(a->quality))
            return bad_usage("--quality takes a classifier spec (.yaml), optionally :WEIGHTS, not '%s'", v);
        return -1;
    }
    case O_THREADS:
        if (parse_int_arg(name, v, 1, TP_MAX_THREADS, &n)) return EXIT_USAGE;
        a->threads = (int)n;
        return -1;
    case O_OUT: a->out = v; return -1;
    case O_BACKEND: a->backend = v; return -1;
    case O_RESUME: a->resume = v ? v : ""; return -1;
    case O_INIT: a->init = v; return -1;
    case O_CHECKPOINT: a->checkpoint = v; return -1;
    case O_IMAGE: a->image = v; return -1;
    case O_JSON: a->json = 1; return -1;
    case O_UNSAFE_HOOKS: a->unsafe_hooks = 1; return -1;
    case O_HOOK_ERRORS:
        if (strcmp(v, "warn") && strcmp(v, "fail"))
            return bad_usage("--hook-errors takes fail or warn, not '%s'", v);
        a->warn_hooks = !strcmp(v, "warn");
        return -1;
    case O_PROGRESS:
        if (!strcmp(v, "bar")) a->progress = 1;
        else if (!strcmp(v, "lines")) a->progress = 0;
        else if (!strcmp(v, "auto")) a->progress = -1;
        else return bad_usage("--progress takes bar, lines or auto, not '%s'", v);
        return -1;
    }
    AG_ASSERT(0);
}

static int is_spec_path(const char *s)
{
    size_t n = strlen(s);
    return (n > 5 && !strcmp(s + n - 5, ".yaml")) || (n > 4 && !strcmp(s + n - 4, ".yml"));
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->threads = 1;
    a->progress = -1;
    a->command = C_TRAIN;
    for (int k = 1; k < argc; k++) {
        const char *s = argv[k];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(s, "--version")) {
            printf("aigc-run %s\n", AIGC_VERSION);
            return 0;
        }
        if (s[0] == '-' && s[1]) {
            int found = -1;
            for (size_t j = 0; j < AG_COUNTOF(options); j++)
                if (!strcmp(s, options[j].name)) found = (int)j;
            if (found < 0) return bad_usage("unknown option '%s'", s);
            if (!(options[found].cmds & a->command))
                return not_for(s, options[found].cmds, options[found].hint);
            const char *v = NULL;
            /* --resume's directory is optional: a following spec file is not it. */
            if (options[found].value == 2 && k + 1 < argc && argv[k + 1][0] != '-' &&
                !(is_spec_path(argv[k + 1]) && !a->spec))
                v = argv[++k];
            else if (options[found].value == 1) {
                if (k + 1 >= argc) return bad_usage("%s needs a value", s);
                v = argv[++k];
            }
            int rc = set_option(a, options[found].opt, s, v);
            if (rc >= 0) return rc;
            continue;
        }
        /* The command comes first; a spec file named "check" is ./check. */
        unsigned command = 0;
        for (size_t j = 0; j < AG_COUNTOF(commands) && k == 1; j++)
            if (!strcmp(s, commands[j])) command = 1u << j;
        if (command) {
            a->command = command;
            continue;
        }
        if (a->spec) return bad_usage("unexpected argument '%s'", s);
        a->spec = s;
    }
    if (!a->spec) return bad_usage("%s", "no spec given");
    if (a->resume && a->init) return bad_usage("%s", "--resume and --init exclude each other");
    /* eval draws a section only to measure it. */
    if (a->command == C_EVAL && !a->quality && (a->count || a->section))
        return bad_usage("%s", "-n and --section are for sample and eval --quality");
    /* A grid is one draw of the section, planned for its count. */
    long grid_limit;
    if (a->command == C_SAMPLE && a->format == F_PNG && a->count > 4096 &&
        parse_int_arg("-n", a->count_text, 1, 4096, &grid_limit))
        return EXIT_USAGE;
    if (a->format == F_IDX && !a->image) return bad_usage("%s", "--format idx writes a directory: give -o DIR");
    if (a->command == C_ENCODE && !a->image) return bad_usage("%s", "encode needs -o DIR, the directory to write");
    /* The spec's inpainting section, by its conventional name (specs/ddpm.yaml). */
    if (a->inpaint && !a->section && a->command == C_SAMPLE) a->section = "inpaint";
    return -1;
}

static int fail(const ag_error *err, const sp_spec *s)
{
    ag_error e = *err;
    if (s) yt_annotate(&e, &s->doc);
    /* Under mpirun, a rank that fails ends the job, which would otherwise wait for it;
     * a stop every rank took together ends it normally, rank 0 saying why. */
    if (dp_size() > 1 && !dp_shared_error()) dp_abort(e.msg);
    if (dp_rank() == 0) fprintf(stderr, "%s\n", e.msg);
    return 1;
}

/* --section NAME's index into the sample sections (the first without it). */
static int find_section(const cli_args *a, const sp_spec *s, const pg_program *p, int *k, ag_error *err)
{
    *k = 0;
    if (p->nsamples == 0) return ag_errorf(err, (ag_loc){s->path, 0, 0}, "the spec has no sample: section");
    if (!a->section) return AG_OK;
    const sp_sample *sec = sp_find_sample(s, a->section);
    if (!sec) {
        char hint[256];
        return ag_errorf(err, (ag_loc){s->path, 0, 0}, "no sample section '%s'%s", a->section,
                         sp_sample_hint(s, a->section, hint, sizeof hint));
    }
    *k = (int)(sec - s->samples);
    return AG_OK;
}

/* --section NAME for encode: a features section (the first, without it). */
static int find_features(const cli_args *a, const sp_spec *s, const pg_program *p, int *k, ag_error *err)
{
    if (a->section) {
        if (find_section(a, s, p, k, err)) return AG_ERR;
        if (!p->samples[*k].features)
            return ag_errorf(err, (ag_loc){s->path, 0, 0}, "sample section '%s' gives %s, not features: encode "
                             "runs a section with 'features:', like specs/vae.yaml's 'latent'", a->section,
                             p->samples[*k].text ? "text" : "images");
        return AG_OK;
    }
    for (*k = 0; *k < p->nsamples; (*k)++)
        if (p->samples[*k].features) return AG_OK;
    return ag_errorf(err, (ag_loc){s->path, 0, 0}, "the spec has no features section: add one to sample:, like "
                     "specs/vae.yaml's 'latent: {steps: [...], features: mu}'");
}

/* A features section is written by encode, not drawn. */
static int drawn_section(const sp_spec *s, const pg_program *p, int k, ag_error *err)
{
    if (!p->samples[k].features) return AG_OK;
    return ag_errorf(err, (ag_loc){s->path, 0, 0}, "sample section '%s' gives features, not images: write them "
                     "with aigc-run encode %s --section %s -o DIR", s->samples[k].name, s->path, s->samples[k].name);
}

/* encode: the features section over both splits into -o DIR; the files written on
 * stdout. */
static int encode(const cli_args *a, const sp_spec *s, pg_program *p, const ds_data *d, int k, ag_error *err)
{
    en_result r;
    if (en_write(p, k, d, a->image, s->seed, &r, err)) return AG_ERR;
    for (int j = 0; j < r.nfiles; j++) printf("%s\n", r.files[j]);
    fprintf(stderr, "%s: %d features; train %lld, test %lld; the scatter's axes hold %.0f%% and %.0f%% of "
            "the variance\n", s->samples[k].name, r.features, (long long)r.train, (long long)r.test,
            100 * r.share[0], 100 * r.share[1]);
    return AG_OK;
}

/* eval --quality and sample --format idx draw this many images per run of the sample
 * graph (n in its expressions). */
enum { QUALITY_DRAW = 250 };

/* The figures beside the weights measured, as quality.json, when they are a run's (its
 * directory holds metrics.jsonl): the run's report shows them. */
static int keep_quality(const qm_report *r, const char *weights, ag_error *err)
{
    char dir[4200], path[4300];
    const char *slash = strrchr(weights, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - weights) : 1, slash ? weights : ".");
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (access(path, F_OK) != 0) return AG_OK;
    snprintf(path, sizeof path, "%s/quality.json", dir);
    af_file f;
    if (af_begin(&f, path, err)) return AG_ERR;
    qm_print(r, f.fp, 1);
    return af_commit(&f, err);
}

/* eval --quality: sample section k (the first, or --section), measured with the
 * classifier. */
static int quality(const cli_args *a, const sp_spec *s, pg_program *p, const ds_data *d, int k, const char *weights,
                   ag_error *err)
{
    qm_classifier c;
    if (qm_classifier_open(&c, a->quality, a->quality_weights, err)) return AG_ERR;
    int64_t n = a->count ? a->count : c.data.test.count;
    qm_report r;
    int rc = qm_measure(p, k, d, &c, n, s->seed, &r, err);
    if (rc == AG_OK) qm_print(&r, stdout, a->json);
    if (rc == AG_OK && weights) rc = keep_quality(&r, weights, err);
    qm_classifier_close(&c);
    return rc;
}

/* Whether section k can be written as --format asks. */
static int format_fits(const cli_args *a, const pg_sampler *q, ag_error *err)
{
    if (a->format != F_IDX) return AG_OK;
    if (q->text)
        return ag_errorf(err, (ag_loc){0}, "--format idx: sample section '%s' gives text, and IDX files hold "
                         "images: write its texts with -o FILE", q->spec->name);
    if (q->channels != 1)
        return ag_errorf(err, (ag_loc){0}, "--format idx: sample section '%s' gives %d-channel images, and an "
                         "IDX data set holds one channel", q->spec->name, q->channels);
    return AG_OK;
}

/* sample --format idx: -n images (the section's count without it) into -o DIR. */
static int write_idx(const cli_args *a, const sp_spec *s, pg_program *p, const ds_data *d, int k, ag_error *err)
{
    const pg_sampler *q = &p->samples[k];
    /* Under mpirun every rank would draw the same: rank 0 writes it. */
    if (dp_rank() != 0) return AG_OK;
    if (sa_write_idx(p, k, d, a->image, s->seed, a->count ? a->count : q->spec->count, err)) return AG_ERR;
    char path[4200];
    for (int labels = 0; labels <= (q->label != NULL); labels++)
        if (sa_idx_path(a->image, labels, path, sizeof path) == AG_OK) printf("%s\n", path);
    return AG_OK;
}

/* weights: the file --checkpoint or --init names (ck_weights_path), the spec's own run's
 * for sample and eval without --checkpoint, else NULL. */
static int run_command(const cli_args *a, sp_spec *s, pg_program *p, const ds_data *d, const char *weights,
                       ag_error *err)
{
    char buf[4800];
    if (a->command == C_CHECK) {
        /* A hook script that does not load is a spec error like any other. */
        if (s->hooks) {
            lh_state *L;
            ag_error e;
            if (lh_open(&L, s->hooks, &(lh_options){.unsafe = a->unsafe_hooks}, &e))
                return ag_errorf(err, s->hooks_loc, "%s", e.msg);
            lh_close(L);
        }
        cr_print_check(p, d, stdout);
        return AG_OK;
    }
    /* The section drawn, before the weights are read: a misspelt --section, or one
     * that --format cannot write, is the mistake to report, whatever the checkpoint. */
    int k = 0;
    if ((a->command == C_SAMPLE || a->quality) &&
        (find_section(a, s, p, &k, err) || drawn_section(s, p, k, err)))
        return AG_ERR;
    if (a->command == C_SAMPLE && format_fits(a, &p->samples[k], err)) return AG_ERR;
    if (a->command == C_ENCODE && find_features(a, s, p, &k, err)) return AG_ERR;
    if (weights && ck_load_weights(weights, &p->params, a->init != NULL, s->name, err)) {
        /* Training the spec writes the default weights, not a path given. */
        if (!a->checkpoint && !a->init && access(weights, F_OK))
            ag_error_addf(err, " (train it first: aigc-run %s, or give --checkpoint)", a->spec);
        return AG_ERR;
    }
    if (a->command == C_SAMPLE) {
        if (d->recorded && pg_sample_reads_data(p, k)) {
            *err = d->absent;
            return ag_error_addf(err, " (sample section '%s' reads the test split)", s->samples[k].name);
        }
        if (a->format == F_IDX) return write_idx(a, s, p, d, k, err);
        /* A grid is a PNG file: '-' (stdout, for texts) or another image type's ending
         * would make a file that its name misdescribes. */
        const char *dot = a->image ? strrchr(a->image, '.') : NULL;
        if (a->image && !p->samples[k].text &&
            (!strcmp(a->image, "-") || (dot && !strchr(dot, '/') && strcasecmp(dot, ".png"))))
            return ag_errorf(err, (ag_loc){0}, "-o %s: sample section '%s' draws images, written as PNG: "
                             "name a file ending in .png", a->image, s->samples[k].name);
        /* Texts are results: stdout unless -o names a file. */
        const char *out = a->image ? a->image : p->samples[k].text ? "-" : "samples.png";
        /* Under mpirun every rank would draw the same: rank 0 writes it. */
        if (dp_rank() != 0) return AG_OK;
        if (sa_write(p, k, d, out, s->seed, 0, err)) return AG_ERR;
        if (strcmp(out, "-")) printf("%s\n", out);
        if (p->samples[k].strip && sa_strip_path(out, buf, sizeof buf) == AG_OK) printf("%s\n", buf);
        return AG_OK;
    }
    if (a->command == C_ENCODE) return dp_rank() == 0 ? encode(a, s, p, d, k, err) : AG_OK;
    if (a->command == C_EVAL && a->quality) return quality(a, s, p, d, k, weights, err);
    if (a->command == C_EVAL) return mt_report(p, d, stdout, a->json, err);
    tr_options o = {.out_dir = a->out, .progress = a->progress, .resume = a->resume,
                    .unsafe_hooks = a->unsafe_hooks, .warn_hooks = a->warn_hooks, .command = a->command_line};
    return tr_run(p, d, &o, err);
}

/* Loads the spec and its data, builds the program and runs the command. */
static int run_spec(const cli_args *a)
{
    int rc;
    sp_spec s;
    ag_error err;
    if (sp_load(&s, a->spec, a->sets, a->nsets, &err)) {
        rc = fail(&err, &s);
        sp_free(&s);
        return rc;
    }
    if (a->command != C_CHECK) bk_warm();
    /* -n counts the drawn section's images (--section's, else the first's); the others
     * are built with their own counts, as training builds them. */
    const sp_sample *drawn = a->section ? sp_find_sample(&s, a->section) : s.samples;
    s.sample_count = a->count;
    s.sample_index = drawn ? (int)(drawn - s.samples) : -1;
    /* An unknown --section is reported with the command; the inputs go to every
     * section then. */
    if (sp_set_inputs(&s, a->section && drawn ? a->section : NULL, a->inputs, a->ninputs, &err)) {
        fprintf(stderr, "aigc-run: %s\nTry 'aigc-run --help'.\n", err.msg);
        sp_free(&s);
        return EXIT_USAGE;
    }
    /* By default a share of physical memory: a spec too big for the machine is
     * refused with its size, before anything is allocated. */
    s.max_memory = a->max_memory ? a->max_memory
                                : (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE) / 10 * 8;
    /* Measuring and writing IDX files draw in pieces (a grid laid out for the piece,
     * never written). */
    if (a->quality || a->format == F_IDX)
        s.sample_count = a->count && a->count < QUALITY_DRAW ? a->count : QUALITY_DRAW;
    ds_data d;
    char buf[4800];
    const char *from = a->checkpoint ? a->checkpoint : a->init;
    const char *weights = from ? ck_weights_path(from, buf, sizeof buf) : NULL;
    /* sample and eval read the spec's own run, as training left it, unless told. */
    if (!from && (a->command & (C_SAMPLE | C_EVAL | C_ENCODE))) weights = ck_run_weights(s.name, buf, sizeof buf);
    /* Sampling needs the data set only for a section that reads the test split:
     * without it, the checkpoint's record of the data builds the program. */
    if (ds_load(&s, &d, &err) && !(a->command == C_SAMPLE && ds_recorded(&s, weights, &err, &d))) {
        rc = fail(&err, &s);
        sp_free(&s);
        return rc;
    }
    pg_program p;
    rc = 0;
    if (pg_build(&p, &s, d.train.rows, d.train.cols, d.train.classes, &err) ||
        run_command(a, &s, &p, &d, weights, &err))
        rc = fail(&err, &s);
    pg_free(&p);
    ds_free(&d);
    sp_free(&s);
    return rc;
}

/* aigc-run report DIR [DIR ...] [-o FILE]: no spec, no program, only what the runs
 * left. */
static int report(int argc, char **argv)
{
    const char **dirs = ag_xcalloc((size_t)argc, sizeof *dirs);
    const char *out = NULL;
    int n = 0;
    for (int k = 2; k < argc; k++) {
        if (!strcmp(argv[k], "-o")) {
            if (k + 1 >= argc) {
                free(dirs);
                return bad_usage("%s needs a value", "-o");
            }
            out = argv[++k];
        } else if (argv[k][0] == '-' && argv[k][1]) {
            free(dirs);
            return bad_usage("report takes run directories and -o FILE, not '%s'", argv[k]);
        } else {
            dirs[n++] = argv[k];
        }
    }
    if (n == 0) {
        free(dirs);
        return bad_usage("%s", "report needs a run directory, like runs/gan");
    }
    char path[4200];
    if (!out && n == 1) snprintf(path, sizeof path, "%s/report.html", dirs[0]), out = path;
    if (!out) out = "report.html";
    ag_error err;
    int rc = rp_write(dirs, n, out, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    else printf("%s\n", out);
    free(dirs);
    return rc ? 1 : 0;
}

static int run_main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "report")) return report(argc, argv);
    cli_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    for (int k = 0, used = 0; k < argc && used < (int)sizeof a.command_line; k++)
        used += snprintf(a.command_line + used, sizeof a.command_line - (size_t)used, "%s%s", k ? " " : "", argv[k]);
    /* The option, else the environment's choice, checked here so that a bad one is
     * reported rather than met by the first product. */
    const char *backend = a.backend ? a.backend : getenv("AIGC_BACKEND");
    ag_error err;
    if (backend && *backend && bk_select(backend, &err))
        return bad_usage(a.backend ? "--backend: %s" : "AIGC_BACKEND: %s", err.msg);
    ag_set_threads(a.threads);
    rc = run_spec(&a);
    ag_set_threads(1); /* the workers joined: nothing of theirs outlives the run */
    return rc;
}

int main(int argc, char **argv)
{
    ag_error err;
    if (dp_init(&err)) {
        fprintf(stderr, "aigc-run: %s\n", err.msg);
        return 1;
    }
    int rc = run_main(argc, argv);
    dp_finalize();
    return rc;
}
