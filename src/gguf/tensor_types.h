/*
 * tensor_types.h — the block layout of the tensor element types (es_type, emosteer.h):
 * the file-format facts the GGUF reader needs to size a tensor.
 * The kernels for the types that can be computed live in kernels/types.h.
 */
#ifndef ES_TENSOR_TYPES_H
#define ES_TENSOR_TYPES_H

#include "emosteer.h" /* es_type, es_type_name, es_row_size */

#include <stddef.h>
#include <stdint.h>

typedef struct es_type_layout {
    const char *name;   /* "F16", "Q4_K", ... */
    int64_t block_size; /* elements per block (1 for plain types) */
    size_t type_size;   /* bytes per block */
} es_type_layout;

/* Layout of a type id, or NULL for an id that is not a known GGML type. */
const es_type_layout *es_type_layout_get(int type);

#endif /* ES_TENSOR_TYPES_H */
