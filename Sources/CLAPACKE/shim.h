// LAPACKE (C interface to LAPACK): SVD for PiSSA/LoftQ adapter initialisation.
#include <lapacke.h>
