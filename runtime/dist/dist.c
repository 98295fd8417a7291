/* dist.c — MPI, loaded at run time from Open MPI's libmpi when mpirun launched us.
 *
 * Open MPI's ABI, as its mpi.h defines it: handles are pointers to predefined objects
 * (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, MPI_SUM
 * &ompi_mpi_op_sum), MPI_IN_PLACE is (void *)1, MPI_THREAD_FUNNELED is 1. Open MPI's
 * own plugins resolve libmpi's symbols, hence RTLD_GLOBAL. */
#include "aigc/dist.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void *mpi_handle;
#define MPI_IN_PLACE_ ((void *)1)
enum { MPI_THREAD_FUNNELED_ = 1 };

static struct {
    void *lib;
    int rank, size, shared_error;
    mpi_handle world, f32, f64, sum;
    int (*init_thread)(int *, char ***, int, int *);
    int (*finalize)(void);
    int (*comm_rank)(mpi_handle, int *);
    int (*comm_size)(mpi_handle, int *);
    int (*allreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle);
    int (*bcast)(void *, int, mpi_handle, int, mpi_handle);
    int (*abort)(mpi_handle, int);
} dp = {.size = 1};

/* A symbol of libmpi, or NULL with the message in err. */
static void *need(const char *name, ag_error *err)
{
    void *s = dlsym(dp.lib, name);
    if (!s) ag_errorf(err, (ag_loc){0}, "libmpi has no %s: is it Open MPI's?", name);
    return s;
}

int dp_init(ag_error *err)
{
    /* mpirun sets these in every rank it starts (Open MPI's, and PMIx's for srun). */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK")) return AG_OK;
    /* A rank waiting for the others yields its core rather than spinning on it: on a
     * machine whose cores are shared (with the other ranks, with --threads' workers, with
     * other jobs) spinning starves the rank it waits for. An explicit setting wins. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    dp.lib = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!dp.lib)
        return ag_errorf(err, (ag_loc){0}, "launched by mpirun, but libmpi cannot be loaded: %s "
                         "(install openmpi-bin)", dlerror());
    /* Object pointers from dlsym; functions go through a cast, as POSIX allows. */
    *(void **)&dp.init_thread = need("MPI_Init_thread", err);
    *(void **)&dp.finalize = need("MPI_Finalize", err);
    *(void **)&dp.comm_rank = need("MPI_Comm_rank", err);
    *(void **)&dp.comm_size = need("MPI_Comm_size", err);
    *(void **)&dp.allreduce = need("MPI_Allreduce", err);
    *(void **)&dp.bcast = need("MPI_Bcast", err);
    *(void **)&dp.abort = need("MPI_Abort", err);
    dp.world = need("ompi_mpi_comm_world", err);
    dp.f32 = need("ompi_mpi_float", err);
    dp.f64 = need("ompi_mpi_double", err);
    dp.sum = need("ompi_mpi_op_sum", err);
    if (!dp.init_thread || !dp.finalize || !dp.comm_rank || !dp.comm_size || !dp.allreduce || !dp.bcast ||
        !dp.abort || !dp.world || !dp.f32 || !dp.f64 || !dp.sum) {
        dlclose(dp.lib);
        dp.lib = NULL;
        return AG_ERR;
    }
    /* Only the main thread calls MPI; the pool's workers never do. */
    int provided;
    if (dp.init_thread(NULL, NULL, MPI_THREAD_FUNNELED_, &provided))
        return ag_errorf(err, (ag_loc){0}, "MPI_Init_thread failed");
    dp.comm_rank(dp.world, &dp.rank);
    dp.comm_size(dp.world, &dp.size);
    if (dp.rank != 0 && !freopen("/dev/null", "w", stdout))
        return ag_errorf(err, (ag_loc){0}, "rank %d: cannot silence stdout", dp.rank);
    return AG_OK;
}

void dp_finalize(void)
{
    if (dp.lib) dp.finalize();
}

int dp_rank(void) { return dp.rank; }
int dp_size(void) { return dp.size; }

/* MPI counts are ints: a longer buffer goes in pieces. */
enum { DP_PIECE = INT_MAX / 8 * 4 };

void dp_sum_f32(float *x, int64_t n)
{
    if (dp.size == 1) return;
    for (int64_t at = 0; at < n; at += DP_PIECE) {
        int m = (int)(n - at < DP_PIECE ? n - at : DP_PIECE);
        dp.allreduce(MPI_IN_PLACE_, x + at, m, dp.f32, dp.sum, dp.world);
    }
}

void dp_bcast_f64(double *x, int64_t n)
{
    if (dp.size == 1) return;
    AG_ASSERT(n <= DP_PIECE);
    dp.bcast(x, (int)n, dp.f64, 0, dp.world);
}

void dp_share(int batch, int *lo, int *n)
{
    int64_t a = (int64_t)batch * dp.rank / dp.size, b = (int64_t)batch * (dp.rank + 1) / dp.size;
    *lo = (int)a;
    *n = (int)(b - a);
}

void dp_abort(const char *msg)
{
    if (dp.size == 1) {
        fprintf(stderr, "%s\n", msg);
        exit(1);
    }
    /* A second is long enough for rank 0, failing alike, to print and end the job. */
    if (dp.rank != 0) nanosleep(&(struct timespec){1, 0}, NULL);
    if (dp.rank != 0)
        fprintf(stderr, "rank %d of %d: %s\n", dp.rank, dp.size, msg);
    else
        fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    dp.abort(dp.world, 1);
    exit(1);
}

void dp_set_shared_error(void) { dp.shared_error = 1; }
int dp_shared_error(void) { return dp.shared_error; }
