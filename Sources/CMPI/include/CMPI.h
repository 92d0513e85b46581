#ifndef LORIKEET_CMPI_H
#define LORIKEET_CMPI_H

/*
 * Open MPI, loaded at run time. Nothing here links against MPI: `lk_mpi_load` dlopens Open
 * MPI's libmpi (soname libmpi.so.40 on Debian's openmpi 4.x) and looks up the handful of
 * functions and predefined handles data-parallel training needs. A program that never calls it
 * (every run without mpirun) needs no MPI installed, and a package that depends on Lorikeet
 * builds without MPI headers.
 *
 * Open MPI's handles are pointers to predefined objects exported by libmpi
 * (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, MPI_SUM
 * &ompi_mpi_op_sum, …), so their dlsym addresses are the handles. Other MPI implementations
 * (MPICH's integer handles) are not supported by this shim.
 *
 * Every function returns 0 on success or an MPI error code (or -1 for a loader failure), and
 * writes a message into `error` (size `error_size`) when it fails.
 */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Loads `library` (NULL: "libmpi.so.40") with RTLD_NOW | RTLD_GLOBAL (Open MPI's own plugins
   resolve symbols of libmpi and libopen-pal through the global scope) and resolves every symbol
   below. Idempotent. */
int lk_mpi_load(const char *library, char *error, size_t error_size);

/* MPI_Init_thread(FUNNELED) unless MPI is initialised already; MPI_ERRORS_RETURN on
   MPI_COMM_WORLD so failures come back as codes; this process's rank and the world size. Also
   registers an exit handler: MPI_Finalize after `lk_mpi_set_clean_exit(1)`, else MPI_Abort
   (a process leaving a job mid-run must take its peers down, not leave them waiting). */
int lk_mpi_init(int *rank, int *size, char *error, size_t error_size);

/* Whether leaving the process now is a clean end of the job (finalize) or not (abort). */
void lk_mpi_set_clean_exit(int clean);

/* In-place sums over MPI_COMM_WORLD; counts beyond INT_MAX go in several calls. */
int lk_mpi_allreduce_sum_f32(float *buffer, size_t count, char *error, size_t error_size);
int lk_mpi_allreduce_sum_f64(double *buffer, size_t count, char *error, size_t error_size);

/* MPI_Bcast of `count` bytes from `root`. */
int lk_mpi_bcast_bytes(void *buffer, size_t count, int root, char *error, size_t error_size);

int lk_mpi_barrier(char *error, size_t error_size);

/* MPI_Abort(MPI_COMM_WORLD, code): the whole job stops; mpirun names this rank. */
void lk_mpi_abort(int code);

/* Whether lk_mpi_init has run (and MPI is not finalised). */
int lk_mpi_is_initialized(void);

#ifdef __cplusplus
}
#endif

#endif
