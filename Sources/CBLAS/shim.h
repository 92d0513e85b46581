// OpenBLAS's CBLAS interface plus its thread-count controls (the engine sets them so BLAS
// threads and its own parallel loops never oversubscribe the cores).
#include <cblas.h>
