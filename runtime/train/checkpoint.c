/* checkpoint.c — a training run saved and resumed: its checkpoints and its record. */
#include "run.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/ckpt.h"
#include "aigc/dist.h"
#include "rundir.h"

static const char *const *optim_names(const sp_spec *s, const char **buf)
{
    for (int k = 0; k < s->noptims; k++) buf[k] = s->optims[k].name;
    return buf;
}

/* A name for the resolved spec: FNV-1a over its text. Informational: resume checks
 * the parameters and optimizers themselves, so that epochs or lr may change. */
static void spec_hash(const sp_spec *s, char *buf, size_t n)
{
    snprintf(buf, n, "%016llx", (unsigned long long)ag_fnv1a(AG_FNV_BASIS, s->doc.src, s->doc.src_len));
}

enum { TR_NFIELDS = 7 };

/* The checkpoint's view of the run; fields (TR_NFIELDS) name the record's values. */
static ck_run ck_view(tr_run_state *st, rng **rngs, const char **names, ck_field *fields, char *hash,
                      size_t hlen)
{
    pg_program *p = st->p;
    spec_hash(p->spec, hash, hlen);
    rngs[0] = &p->rng;
    rngs[1] = &st->data_rng;
    tr_record *rec = &st->rec;
    int nlogs = p->nlogs < MT_MAX_LOGS ? p->nlogs : MT_MAX_LOGS;
    int nopt = p->spec->noptims < TR_MAX_OPTIMS ? p->spec->noptims : TR_MAX_OPTIMS;
    fields[0] = (ck_field){"train_sum", CK_F64, nlogs, rec->train.sum, 0};
    fields[1] = (ck_field){"train_count", CK_I64, 1, &rec->train.count, 0};
    fields[2] = (ck_field){"metrics_bytes", CK_I64, 1, &rec->metrics_bytes, 0};
    fields[3] = (ck_field){"spec_lr", CK_F64, nopt, rec->spec_lr, 0};
    fields[4] = (ck_field){"skipped", CK_I64, 1, &rec->skipped, 0};
    fields[5] = (ck_field){"skipped_in_row", CK_I64, 1, &rec->skipped_in_row, 0};
    /* Optional: a state file written before values could skip steps has none. */
    fields[6] = (ck_field){"train_counts", CK_I64, nlogs, rec->train.counts, 1};
    return (ck_run){.spec_name = p->spec->name, .spec_hash = hash,
                    .data = st->data_meta, .vocab = st->d->kind == SP_DATA_TEXT ? st->vocab_meta : NULL,
                    .params = &p->params,
                    .noptims = p->spec->noptims, .optims = p->optims,
                    .optim_names = optim_names(p->spec, names), .nrngs = 2, .rngs = rngs,
                    .order = st->order, .norder = st->d->train.count, .cursor = st->cursor,
                    .epoch = st->epoch, .step = st->step, .fields = fields, .nfields = TR_NFIELDS};
}

static int save(tr_run_state *st, const char *name, ag_error *err)
{
    rng *rngs[2];
    const char *names[64];
    ck_field fields[TR_NFIELDS];
    char hash[32];
    fflush(st->mf);
    st->rec.metrics_bytes = ftell(st->mf);
    for (int k = 0; k < st->p->spec->noptims && k < TR_MAX_OPTIMS; k++)
        st->rec.spec_lr[k] = st->p->spec->optims[k].h.lr;
    ck_run r = ck_view(st, rngs, names, fields, hash, sizeof hash);
    return ck_save(st->dir, name, &r, err);
}

int tr_checkpoint(tr_run_state *st, ag_error *err)
{
    const sp_spec *s = st->p->spec;
    /* Every rank holds the same state: rank 0 writes it. */
    if (dp_rank() != 0) return AG_OK;
    if (save(st, "last", err)) return AG_ERR;
    if (s->ckpt_keep == 0) return AG_OK;
    char name[64];
    snprintf(name, sizeof name, "step-%08lld", (long long)st->step);
    if (save(st, name, err)) return AG_ERR;
    rd_prune(st->dir, s->ckpt_keep);
    return AG_OK;
}

int tr_resume(tr_run_state *st, const char *from, ag_error *err)
{
    char dir[4096], name[512];
    if (ck_locate(from, dir, sizeof dir, name, sizeof name))
        return ag_errorf(err, (ag_loc){0}, "%s: no run directory or checkpoint to resume from", from);
    /* A run still training there may be between a checkpoint's two renames: its lock
     * says so, where reading would say a file is missing. Resuming in place, the lock is
     * kept for the run; resuming elsewhere, it guards the reading only. Rank 0 alone
     * takes it: the ranks of one job read the checkpoint together. */
    int fd = -1;
    if (dp_rank() == 0 && rd_lock(dir, &fd, err)) return AG_ERR;
    struct stat a, b;
    if (fd >= 0 && stat(dir, &a) == 0 && stat(st->dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        st->dir_fd = fd;
    rng *rngs[2];
    const char *names[64];
    ck_field fields[TR_NFIELDS];
    char hash[32];
    ck_run r = ck_view(st, rngs, names, fields, hash, sizeof hash);
    r.spec_hash = NULL; /* a changed epoch count or learning rate may resume */
    /* Left at -1 by a file without train_counts, made when every logged value was
     * computed at every step: then each one's count is the steps'. */
    for (int k = 0; k < MT_MAX_LOGS; k++) st->rec.train.counts[k] = -1;
    int rc = ck_load(dir, name, &r, err);
    for (int k = 0; k < MT_MAX_LOGS; k++)
        if (st->rec.train.counts[k] < 0) st->rec.train.counts[k] = st->rec.train.count;
    if (fd >= 0 && st->dir_fd != fd) close(fd);
    if (rc) return AG_ERR;
    st->epoch = r.epoch;
    st->cursor = r.cursor;
    st->step = r.step;
    snprintf(st->resume_dir, sizeof st->resume_dir, "%s", dir);
    for (int k = 0; k < st->p->spec->noptims && k < TR_MAX_OPTIMS; k++)
        if (st->p->spec->optims[k].h.lr != st->rec.spec_lr[k])
            opt_set_lr(&st->p->optims[k], -1, st->p->spec->optims[k].h.lr);
    /* The hooks' run.lr shows the learning rates the checkpoint restored. */
    for (int k = 0; st->hk.optims && k < st->p->spec->noptims; k++)
        st->hk.optims[k].lr = st->p->optims[k].groups[0].lr;
    return AG_OK;
}

/* The run directory stays as it is, where the run would have ended without a word or
 * trained on beyond the count. An epoch whose last step is done but whose end is not
 * recorded is still to finish. */
int tr_nothing_to_train(const tr_run_state *st)
{
    int epochs = st->p->spec->epochs, e = st->epoch;
    int64_t count = st->d->train.count;
    char why[160];
    if (st->cursor == count && !st->rec.train.count && e == epochs)
        snprintf(why, sizeof why, "the run has done its %d epoch%s (--epochs %d or more trains on)", e,
                 e == 1 ? "" : "s", e + 1);
    else if (st->cursor == count && !st->rec.train.count && e > epochs)
        snprintf(why, sizeof why, "the run has done %d epochs, more than %d (--epochs %d or more trains on)", e, epochs,
                 e + 1);
    else if (st->cursor < count && e > epochs)
        snprintf(why, sizeof why, "the run stopped in epoch %d, past %d (--epochs %d or more finishes it)", e, epochs, e);
    else
        return 0;
    if (dp_rank() == 0) fprintf(stderr, "%s: nothing to train: %s\n", st->resume_dir, why);
    return 1;
}
