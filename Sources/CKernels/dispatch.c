// Implementation placeholder; see CKernels.h.
