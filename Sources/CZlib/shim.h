// zlib, for dictd's gzip-compressed dictionaries (the FOLDOC data-prep reads them directly).
#include <zlib.h>
