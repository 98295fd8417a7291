/* pool.c — worker threads that spin briefly, yield, then sleep on a futex; chunks
 * claimed by whichever thread gets there first (include/aigc/pool.h). */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aigc/base.h"
#include "aigc/pool.h"

/* A worker waits for the next job in three stages: a few microseconds of pause
 * instructions (the gap between two jobs of a step), then sched_yield in a loop, which
 * stays ready for the next job on an idle machine but hands the core to any other
 * thread that wants it on a busy one, then a futex. A worker that only spun would take
 * its share of a busy machine's cores away from the thread that has the work. */
enum { SPIN_WORKER = 256, YIELD_WORKER = 128, SPIN_CALLER = 1024 };

/* One job at a time. `claim` holds the job's generation (bits 32-63), its number of
 * chunks (16-31) and the next unclaimed chunk (0-15). A thread claims a chunk with a
 * compare-and-swap on it; a successful one proves the job it read the fields of is still
 * running, so those fields are its own and not the next job's. */
static struct {
    int nthreads;
    pthread_t workers[TP_MAX_THREADS];
    _Atomic uint32_t gen;       /* futex word: bumped for each job, and to quit */
    _Atomic uint64_t claim;
    _Atomic int done;           /* chunks of the current job finished */
    _Atomic int sleepers;
    _Atomic int quit;
    tp_fn fn;
    void *ctx;
    int64_t n;
} pool = {.nthreads = 1};

/* A spin-wait hint: it spares the memory system and a sibling hyperthread. */
static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(_Atomic uint32_t *word, uint32_t seen)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, TP_MAX_THREADS, NULL, NULL, 0);
}

/* Chunk k of nchunks over [0, n): boundaries at multiples of 16, the last one at n.
 * They are rounded up, which makes the first chunk the larger: the caller claims it
 * while the workers are still waking (a VAE epoch's caller waited for them about half
 * as long as with the boundaries rounded down). */
int64_t tp_bound(int64_t n, int nchunks, int k)
{
    if (k == nchunks) return n;
    int64_t b = (n * k / nchunks + 15) & ~(int64_t)15;
    return b < n ? b : n;
}

/* The caller posted an aside job (tp_aside) and has not waited for it yet. */
static int aside;

static void wait_done(int nchunks)
{
    for (int s = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < nchunks; s++) {
        /* A chunk is running on a worker that may have lost its core: give it ours. */
        if (s < SPIN_CALLER)
            cpu_relax();
        else
            sched_yield();
    }
}

static void wait_aside(void)
{
    if (!aside) return;
    wait_done(1);
    aside = 0;
}

/* The calling thread's number: 0 for the caller, 1 to nthreads - 1 for the workers. */
static _Thread_local int self;
/* The thread is inside a chunk: the pool is busy with the job that chunk belongs to. */
static _Thread_local int in_chunk;

/* Runs chunks of job `gen` until none is left or a newer job has replaced it. */
static void run_chunks(uint32_t gen)
{
    tp_fn fn = pool.fn;
    void *ctx = pool.ctx;
    int64_t n = pool.n;
    uint64_t c = atomic_load(&pool.claim);
    for (;;) {
        int k = (int)(c & 0xffff), nchunks = (int)(c >> 16 & 0xffff);
        if ((uint32_t)(c >> 32) != gen || k >= nchunks) return;
        if (!atomic_compare_exchange_weak(&pool.claim, &c, c + 1)) continue;
        in_chunk = 1;
        fn(ctx, tp_bound(n, nchunks, k), tp_bound(n, nchunks, k + 1));
        in_chunk = 0;
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        c = atomic_load(&pool.claim);
    }
}

int tp_self(void) { return self; }

/* What a worker starts from: its number, and the generation when it was started. A
 * worker that read the generation itself could read a later one, that of the post
 * asking it to quit, and wait for the next forever. */
typedef struct worker_start {
    int self;
    uint32_t gen;
} worker_start;

static worker_start starts[TP_MAX_THREADS];

static void *worker(void *arg)
{
    const worker_start *w = arg;
    uint32_t seen = w->gen;
    self = w->self;
    /* A run's interruption is handled on the thread that set the handler up, on a stack
     * of its own (runtime/train/train.c): a worker, inside a oneDNN kernel most of the
     * time, takes none. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    for (;;) {
        uint32_t gen;
        for (int s = 0; (gen = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen; s++) {
            if (s < SPIN_WORKER) {
                cpu_relax();
                continue;
            }
            if (s < SPIN_WORKER + YIELD_WORKER) {
                sched_yield();
                continue;
            }
            /* The caller bumps gen before it reads sleepers, and this thread counts
             * itself before the kernel compares gen: one of the two sees the other. */
            atomic_fetch_add(&pool.sleepers, 1);
            futex_wait(&pool.gen, seen);
            atomic_fetch_sub(&pool.sleepers, 1);
            s = 0;
        }
        seen = gen;
        if (atomic_load(&pool.quit)) return NULL;
        run_chunks(gen);
    }
}

static void post(void)
{
    atomic_fetch_add(&pool.gen, 1);
    if (atomic_load(&pool.sleepers) > 0) futex_wake_all(&pool.gen);
}

void tp_set_threads(int n)
{
    AG_ASSERT(n >= 1 && !in_chunk);
    wait_aside();
    if (n > TP_MAX_THREADS) n = TP_MAX_THREADS;
    if (n == pool.nthreads) return;
    if (pool.nthreads > 1) {
        atomic_store(&pool.quit, 1);
        post();
        for (int k = 1; k < pool.nthreads; k++) pthread_join(pool.workers[k], NULL);
        atomic_store(&pool.quit, 0);
    }
    pool.nthreads = n;
    for (int k = 1; k < n; k++) {
        starts[k] = (worker_start){k, atomic_load(&pool.gen)};
        if (pthread_create(&pool.workers[k], NULL, worker, &starts[k]) != 0)
            ag_assert_fail(__FILE__, __LINE__, "cannot start a worker thread");
    }
}

int tp_threads(void) { return in_chunk ? 1 : pool.nthreads; }

/* Posts [0, n) in nchunks chunks to the workers; returns the job's generation. No
 * worker can be inside a chunk here: the previous job's were all waited for. */
static uint32_t post_job(int64_t n, int nchunks, tp_fn fn, void *ctx)
{
    wait_aside();
    uint32_t gen = atomic_load(&pool.gen) + 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    atomic_store(&pool.done, 0);
    atomic_store(&pool.claim, (uint64_t)gen << 32 | (uint64_t)nchunks << 16);
    post();
    return gen;
}

/* At most `most` chunks of at least `grain` elements of [0, n), or 1 inside a chunk. */
static int job_chunks(int64_t n, int64_t grain, int64_t most)
{
    AG_ASSERT(grain >= 16);
    if (in_chunk) most = 1;
    if (n / grain < most) most = n / grain;
    return most < 1 ? 1 : (int)most;
}

int tp_for_chunks(int64_t n, int64_t grain) { return job_chunks(n, grain, pool.nthreads); }

/* tp_for and tp_for_each: [0, n) in at most `most` chunks of at least `grain` elements. */
static void run_job(int64_t n, int64_t grain, int64_t most, tp_fn fn, void *ctx)
{
    int nchunks = job_chunks(n, grain, most);
    if (nchunks <= 1) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    run_chunks(post_job(n, nchunks, fn, ctx));
    wait_done(nchunks);
}

void tp_aside(tp_fn fn, void *ctx)
{
    AG_ASSERT(!in_chunk);
    wait_aside();
    if (pool.nthreads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    post_job(1, 1, fn, ctx); /* the caller claims none of it */
    aside = 1;
}

void tp_for(int64_t n, int64_t grain, tp_fn fn, void *ctx)
{
    run_job(n, grain, pool.nthreads, fn, ctx);
}

void tp_for_each(int64_t n, int64_t grain, tp_fn fn, void *ctx)
{
    run_job(n, grain, pool.nthreads > 1 ? TP_EACH_CHUNKS * pool.nthreads : 1, fn, ctx);
}

/* Items as a tp_for job: element 16 i stands for item i, so that tp_for's chunk
 * boundaries, multiples of 16, fall between whole items. */
typedef struct item_job {
    tp_fn fn;
    void *ctx;
} item_job;

static void run_items(void *ctx, int64_t lo, int64_t hi)
{
    const item_job *j = ctx;
    j->fn(j->ctx, lo / 16, hi / 16);
}

void tp_for_items(int64_t n, int64_t grain, tp_fn fn, void *ctx)
{
    AG_ASSERT(grain >= 1);
    tp_for(16 * n, 16 * grain, run_items, &(item_job){fn, ctx});
}

void tp_each_item(int64_t n, tp_fn fn, void *ctx)
{
    tp_for_each(16 * n, 16, run_items, &(item_job){fn, ctx});
}

int64_t tp_items_holding(int64_t least, int64_t per)
{
    return per >= least || per < 1 ? 1 : (least + per - 1) / per;
}

typedef struct sum_job {
    tp_sum_fn fn;
    void *ctx;
    int64_t n, block;
    double *part;
} sum_job;

/* Blocks [lo, hi) of tp_sum's. */
static void sum_blocks(void *ctx, int64_t lo, int64_t hi)
{
    const sum_job *j = ctx;
    for (int64_t b = lo; b < hi; b++) {
        int64_t from = b * j->block, to = from + j->block < j->n ? from + j->block : j->n;
        j->part[b] = j->fn(j->ctx, from, to);
    }
}

double tp_sum(int64_t n, int64_t block, tp_sum_fn fn, void *ctx)
{
    AG_ASSERT(block >= 1);
    if (n <= 0) return 0;
    if ((n + block - 1) / block > TP_SUM_BLOCKS) block = (n + TP_SUM_BLOCKS - 1) / TP_SUM_BLOCKS;
    int64_t nblocks = (n + block - 1) / block;
    double part[TP_SUM_BLOCKS];
    tp_for_items(nblocks, 1, sum_blocks, &(sum_job){fn, ctx, n, block, part});
    double s = 0;
    for (int64_t b = 0; b < nblocks; b++) s += part[b];
    return s;
}
