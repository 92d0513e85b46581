/* Open MPI through dlopen: see include/CMPI.h. */
#include "CMPI.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Open MPI's ABI (mpi.h of openmpi 4.x): handles are pointers, MPI_IN_PLACE is (void *)1,
   MPI_SUCCESS 0, MPI_THREAD_FUNNELED 1, MPI_MAX_ERROR_STRING 256. */
typedef void *lk_handle;
#define LK_MPI_IN_PLACE ((void *)1)
#define LK_MPI_THREAD_FUNNELED 1
#define LK_MPI_MAX_ERROR_STRING 256

static struct {
    void *library;
    int (*init_thread)(int *, char ***, int, int *);
    int (*initialized)(int *);
    int (*finalized)(int *);
    int (*finalize)(void);
    int (*abort)(lk_handle, int);
    int (*comm_rank)(lk_handle, int *);
    int (*comm_size)(lk_handle, int *);
    int (*comm_set_errhandler)(lk_handle, lk_handle);
    int (*allreduce)(const void *, void *, int, lk_handle, lk_handle, lk_handle);
    int (*bcast)(void *, int, lk_handle, int, lk_handle);
    int (*barrier)(lk_handle);
    int (*error_string)(int, char *, int *);
    lk_handle comm_world, type_float, type_double, type_byte, op_sum, errors_return;
} mpi;

static int initialized_here = 0;
static volatile int clean_exit = 0;

static void say(char *error, size_t size, const char *format, ...) {
    if (!error || size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
}

/* "<what>: <MPI's own words for code>". */
static int failed(int code, const char *what, char *error, size_t size) {
    char text[LK_MPI_MAX_ERROR_STRING + 1] = {0};
    int length = 0;
    if (!mpi.error_string || mpi.error_string(code, text, &length) != 0) snprintf(text, sizeof text, "MPI error %d", code);
    say(error, size, "%s: %s", what, text);
    return code;
}

int lk_mpi_load(const char *library, char *error, size_t error_size) {
    if (mpi.library) return 0;
    const char *name = library && library[0] ? library : "libmpi.so.40";
    void *handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        const char *why = dlerror();
        say(error, error_size, "cannot load %s (%s)", name, why ? why : "unknown reason");
        return -1;
    }
#define LK_FIND(field, symbol)                                                              \
    do {                                                                                     \
        *(void **)(&mpi.field) = dlsym(handle, symbol);                                      \
        if (!mpi.field) {                                                                    \
            say(error, error_size, "%s has no symbol %s (not Open MPI 4 or later?)", name, symbol); \
            dlclose(handle);                                                                 \
            return -1;                                                                       \
        }                                                                                    \
    } while (0)
    LK_FIND(init_thread, "MPI_Init_thread");
    LK_FIND(initialized, "MPI_Initialized");
    LK_FIND(finalized, "MPI_Finalized");
    LK_FIND(finalize, "MPI_Finalize");
    LK_FIND(abort, "MPI_Abort");
    LK_FIND(comm_rank, "MPI_Comm_rank");
    LK_FIND(comm_size, "MPI_Comm_size");
    LK_FIND(comm_set_errhandler, "MPI_Comm_set_errhandler");
    LK_FIND(allreduce, "MPI_Allreduce");
    LK_FIND(bcast, "MPI_Bcast");
    LK_FIND(barrier, "MPI_Barrier");
    LK_FIND(error_string, "MPI_Error_string");
    LK_FIND(comm_world, "ompi_mpi_comm_world");
    LK_FIND(type_float, "ompi_mpi_float");
    LK_FIND(type_double, "ompi_mpi_double");
    LK_FIND(type_byte, "ompi_mpi_byte");
    LK_FIND(op_sum, "ompi_mpi_op_sum");
    LK_FIND(errors_return, "ompi_mpi_errors_return");
#undef LK_FIND
    mpi.library = handle;
    return 0;
}

static void at_exit(void) {
    if (!lk_mpi_is_initialized()) return;
    if (clean_exit) mpi.finalize();
    else mpi.abort(mpi.comm_world, 1);
}

int lk_mpi_init(int *rank, int *size, char *error, size_t error_size) {
    if (!mpi.library) {
        say(error, error_size, "MPI is not loaded");
        return -1;
    }
    int already = 0, code;
    mpi.initialized(&already);
    if (!already) {
        int provided = 0;
        if ((code = mpi.init_thread(NULL, NULL, LK_MPI_THREAD_FUNNELED, &provided)) != 0) return failed(code, "MPI_Init_thread", error, error_size);
        initialized_here = 1;
        atexit(at_exit);
    }
    if ((code = mpi.comm_set_errhandler(mpi.comm_world, mpi.errors_return)) != 0) return failed(code, "MPI_Comm_set_errhandler", error, error_size);
    if ((code = mpi.comm_rank(mpi.comm_world, rank)) != 0) return failed(code, "MPI_Comm_rank", error, error_size);
    if ((code = mpi.comm_size(mpi.comm_world, size)) != 0) return failed(code, "MPI_Comm_size", error, error_size);
    return 0;
}

void lk_mpi_set_clean_exit(int clean) { clean_exit = clean; }

int lk_mpi_is_initialized(void) {
    if (!mpi.library || !initialized_here) return 0;
    int done = 0;
    mpi.finalized(&done);
    return !done;
}

static int allreduce_sum(char *buffer, size_t count, size_t width, lk_handle type, char *error, size_t error_size) {
    if (!lk_mpi_is_initialized()) { say(error, error_size, "MPI is not initialised"); return -1; }
    while (count > 0) {
        int n = count > (size_t)INT_MAX ? INT_MAX : (int)count;
        int code = mpi.allreduce(LK_MPI_IN_PLACE, buffer, n, type, mpi.op_sum, mpi.comm_world);
        if (code != 0) return failed(code, "MPI_Allreduce", error, error_size);
        buffer += (size_t)n * width;
        count -= (size_t)n;
    }
    return 0;
}

int lk_mpi_allreduce_sum_f32(float *buffer, size_t count, char *error, size_t error_size) {
    return allreduce_sum((char *)buffer, count, sizeof(float), mpi.type_float, error, error_size);
}

int lk_mpi_allreduce_sum_f64(double *buffer, size_t count, char *error, size_t error_size) {
    return allreduce_sum((char *)buffer, count, sizeof(double), mpi.type_double, error, error_size);
}

int lk_mpi_bcast_bytes(void *buffer, size_t count, int root, char *error, size_t error_size) {
    if (!lk_mpi_is_initialized()) { say(error, error_size, "MPI is not initialised"); return -1; }
    char *bytes = buffer;
    while (count > 0) {
        int n = count > (size_t)INT_MAX ? INT_MAX : (int)count;
        int code = mpi.bcast(bytes, n, mpi.type_byte, root, mpi.comm_world);
        if (code != 0) return failed(code, "MPI_Bcast", error, error_size);
        bytes += n;
        count -= (size_t)n;
    }
    return 0;
}

int lk_mpi_barrier(char *error, size_t error_size) {
    if (!lk_mpi_is_initialized()) { say(error, error_size, "MPI is not initialised"); return -1; }
    int code = mpi.barrier(mpi.comm_world);
    return code == 0 ? 0 : failed(code, "MPI_Barrier", error, error_size);
}

void lk_mpi_abort(int code) {
    if (lk_mpi_is_initialized()) mpi.abort(mpi.comm_world, code);
    _Exit(code);
}
