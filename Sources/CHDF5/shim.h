// HDF5's C API. Its constants (file-access flags, native type ids, default property lists)
// are macros that expand to function calls, which Swift cannot import; the static inline
// accessors below give them names Swift can call.
#include <hdf5.h>

static inline unsigned lk_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned lk_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned lk_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned lk_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline hid_t lk_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t lk_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t lk_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t lk_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t lk_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t lk_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t lk_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t lk_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t lk_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t lk_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t lk_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t lk_H5T_C_S1(void) { return H5T_C_S1; }
/// The size that marks a string type as variable-length (h5py writes `str` this way).
static inline size_t lk_H5T_VARIABLE(void) { return H5T_VARIABLE; }
/// Silences HDF5's own stderr error printing: Lorikeet reports errors itself, by name.
static inline herr_t lk_H5_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
