/*
 * gguf.c — GGUF reader (validating, zero-copy over an mmap) and writer. See gguf.h.
 *
 * File layout (versions 2 and 3, little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x { string key, u32 value type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   zero padding to general.alignment (default 32), then the data section;
 *   each tensor's data starts at data section + offset (a multiple of the alignment).
 * A string is u64 length + bytes (no NUL). An array is u32 element type, u64 count,
 * then the elements (arrays may hold arrays).
 *
 * The reader treats the file as hostile: each read is bounds-checked against the
 * bytes left, each count is bounded by what could fit in the bytes left before any
 * allocation, each product and sum is overflow-checked. Allocations are therefore
 * bounded by a small multiple of the file size.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gguf.h"

#include "tensor_types.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NESTING 8 /* arrays of arrays: at most this many levels */
#define GGUF_KEY_ALIGNMENT "general.alignment"

/* ------------------------------------------------------------------------- */
/* Value types                                                               */
/* ------------------------------------------------------------------------- */

static const char *const vtype_names[ES_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

static const char *vtype_name(uint32_t t) {
    return t < ES_GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

/* Bytes of one scalar of type t; 0 for strings, arrays and unknown types. */
static size_t vtype_size(uint32_t t) {
    switch (t) {
    case ES_GGUF_UINT8:
    case ES_GGUF_INT8:
    case ES_GGUF_BOOL: return 1;
    case ES_GGUF_UINT16:
    case ES_GGUF_INT16: return 2;
    case ES_GGUF_UINT32:
    case ES_GGUF_INT32:
    case ES_GGUF_FLOAT32: return 4;
    case ES_GGUF_UINT64:
    case ES_GGUF_INT64:
    case ES_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static bool vtype_is_int(uint32_t t) {
    switch (t) {
    case ES_GGUF_UINT8:
    case ES_GGUF_INT8:
    case ES_GGUF_UINT16:
    case ES_GGUF_INT16:
    case ES_GGUF_UINT32:
    case ES_GGUF_INT32:
    case ES_GGUF_UINT64:
    case ES_GGUF_INT64: return true;
    default: return false;
    }
}

static bool vtype_is_float(uint32_t t) {
    return t == ES_GGUF_FLOAT32 || t == ES_GGUF_FLOAT64;
}

/* Smallest encoding of one element of type t (bounds array counts); 0 if unknown. */
static size_t vtype_min_size(uint32_t t) {
    if (t == ES_GGUF_STRING) return 8;    /* u64 length */
    if (t == ES_GGUF_ARRAY) return 4 + 8; /* u32 type + u64 count */
    return vtype_size(t);
}

/* ------------------------------------------------------------------------- */
/* Little-endian loads                                                       */
/* ------------------------------------------------------------------------- */

static uint16_t ld16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) {
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

/* Copies a possibly non-printable name into buf for messages (at most 80 chars). */
static const char *printable(char *buf, size_t cap, const char *s, uint64_t len) {
    size_t n = 0;
    for (uint64_t i = 0; i < len && n + 4 < cap && i < 80; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (len > 80 && n + 4 < cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* Grows *arr (of *cap elements of elem bytes) to hold need elements. */
static bool grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    size_t bytes;
    if (!es_mul_size(nc, elem, &bytes)) return false;
    void *p = realloc(*arr, bytes);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Name index: open-addressing hash table of indices into an array of names  */
/* ------------------------------------------------------------------------- */

typedef struct name_index {
    int64_t *slot; /* [cap] index of the entry, or -1 */
    size_t mask;   /* cap - 1, cap a power of two */
} name_index;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static es_status name_index_init(name_index *ix, size_t n) {
    size_t cap = 8;
    while (cap < n * 2)
        cap *= 2; /* n is bounded by the file size, so this terminates */
    ix->slot = malloc(cap * sizeof *ix->slot);
    if (!ix->slot) return es_error(ES_ERR_NOMEM, "out of memory for an index of %zu names", n);
    for (size_t i = 0; i < cap; i++)
        ix->slot[i] = -1;
    ix->mask = cap - 1;
    return ES_OK;
}

/* ------------------------------------------------------------------------- */
/* The reader                                                                */
/* ------------------------------------------------------------------------- */

typedef struct gguf_kv {
    size_t key_off; /* key bytes in the image */
    size_t key_len;
    es_gguf_vtype type;
    size_t val_off;          /* scalar bytes, string length field, or first array element */
    es_gguf_vtype elem_type; /* arrays only */
    uint64_t n;              /* arrays only: element count */
    size_t *str_off;         /* string arrays: offset of each element's length field [n] */
} gguf_kv;

struct es_gguf {
    const uint8_t *base; /* the image [size] */
    size_t size;
    void *map;  /* our mapping, or NULL for a borrowed buffer */
    char *path; /* "" for memory images */
    uint32_t version;
    size_t alignment;
    size_t data_off; /* start of the data section */
    int64_t n_kv;
    gguf_kv *kvs; /* [n_kv] */
    name_index kv_ix;
    int64_t n_tensors;
    es_gguf_tensor *tensors; /* [n_tensors] */
    char *names;             /* all tensor names, NUL-terminated, back to back */
    name_index t_ix;
};

typedef struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;
} cursor;

static size_t left(const cursor *c) {
    return c->size - c->pos;
}

static es_status need(const cursor *c, size_t n, const char *what) {
    if (left(c) < n)
        return es_error(ES_ERR_FORMAT,
                        "truncated at byte %zu reading %s (need %zu bytes, %zu left)", c->pos, what,
                        n, left(c));
    return ES_OK;
}

static es_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    es_status st = need(c, 4, what);
    if (st) return st;
    *v = ld32(c->base + c->pos);
    c->pos += 4;
    return ES_OK;
}

static es_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    es_status st = need(c, 8, what);
    if (st) return st;
    *v = ld64(c->base + c->pos);
    c->pos += 8;
    return ES_OK;
}

/* Reads a string: *off gets the offset of its bytes. */
static es_status rd_str(cursor *c, size_t *off, size_t *len, const char *what) {
    size_t at = c->pos;
    uint64_t n;
    es_status st = rd_u64(c, &n, what);
    if (st) return st;
    if (n > left(c))
        return es_error(ES_ERR_FORMAT,
                        "string length %" PRIu64 " at byte %zu runs past the end (%zu bytes left) "
                        "reading %s",
                        n, at, left(c), what);
    *off = c->pos;
    *len = (size_t)n;
    c->pos += (size_t)n;
    return ES_OK;
}

static es_status skip_value(cursor *c, uint32_t type, int depth);

/* Skips n elements of type elem; depth counts the arrays around them. */
static es_status skip_elements(cursor *c, uint32_t elem, uint64_t n, int depth, size_t at) {
    size_t min = vtype_min_size(elem);
    if (min == 0)
        return es_error(ES_ERR_FORMAT, "unknown array element type %" PRIu32 " at byte %zu", elem,
                        at);
    if (n > left(c) / min)
        return es_error(ES_ERR_FORMAT,
                        "array count %" PRIu64 " of %s at byte %zu exceeds the %zu bytes left", n,
                        vtype_name(elem), at, left(c));
    size_t sz = vtype_size(elem);
    if (sz) {
        c->pos += (size_t)n * sz; /* fits: n <= left / sz */
        return ES_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        es_status st = skip_value(c, elem, depth);
        if (st) return st;
    }
    return ES_OK;
}

static es_status skip_value(cursor *c, uint32_t type, int depth) {
    size_t at = c->pos;
    if (type == ES_GGUF_STRING) {
        size_t off, len;
        return rd_str(c, &off, &len, "a string value");
    }
    if (type == ES_GGUF_ARRAY) {
        if (depth >= GGUF_MAX_NESTING)
            return es_error(ES_ERR_FORMAT, "arrays nested deeper than %d levels at byte %zu",
                            GGUF_MAX_NESTING, at);
        uint32_t elem;
        uint64_t n;
        es_status st = rd_u32(c, &elem, "an array element type");
        if (!st) st = rd_u64(c, &n, "an array count");
        if (st) return st;
        return skip_elements(c, elem, n, depth + 1, at);
    }
    size_t sz = vtype_size(type);
    if (sz == 0)
        return es_error(ES_ERR_FORMAT, "unknown value type %" PRIu32 " at byte %zu", type, at);
    es_status st = need(c, sz, "a scalar value");
    if (st) return st;
    c->pos += sz;
    return ES_OK;
}

/* Parses the value of kv (its type already read) at the cursor. */
static es_status parse_kv_value(cursor *c, gguf_kv *kv) {
    kv->val_off = c->pos;
    if (kv->type != ES_GGUF_ARRAY) return skip_value(c, kv->type, 0);
    size_t at = c->pos;
    uint32_t elem;
    uint64_t n;
    es_status st = rd_u32(c, &elem, "an array element type");
    if (!st) st = rd_u64(c, &n, "an array count");
    if (st) return st;
    kv->elem_type = (es_gguf_vtype)elem;
    kv->n = n;
    kv->val_off = c->pos;
    if (elem != ES_GGUF_STRING) return skip_elements(c, elem, n, 1, at);
    /* string array: index every element so es_gguf_arr_str is O(1) */
    if (n > left(c) / 8)
        return es_error(ES_ERR_FORMAT,
                        "array count %" PRIu64 " of string at byte %zu exceeds the %zu bytes left",
                        n, at, left(c));
    kv->str_off = malloc((n ? (size_t)n : 1) * sizeof *kv->str_off);
    if (!kv->str_off)
        return es_error(ES_ERR_NOMEM, "out of memory indexing %" PRIu64 " strings", n);
    for (uint64_t i = 0; i < n; i++) {
        size_t off, len;
        kv->str_off[i] = c->pos;
        st = rd_str(c, &off, &len, "a string array element");
        if (st) return st;
    }
    return ES_OK;
}

static es_status parse_kvs(es_gguf *g, cursor *c, uint64_t n_kv) {
    /* smallest kv: empty key (8) + type (4) + a one-byte value */
    if (n_kv > left(c) / 13)
        return es_error(ES_ERR_FORMAT,
                        "header claims %" PRIu64 " key/values but only %zu bytes follow", n_kv,
                        left(c));
    size_t cap = 0;
    char name[128];
    es_status st;
    for (uint64_t i = 0; i < n_kv; i++) {
        /* grow as we go: memory follows what the file holds, not what it claims */
        if (!grow((void **)&g->kvs, &cap, (size_t)i + 1, sizeof *g->kvs))
            return es_error(ES_ERR_NOMEM, "out of memory for %" PRIu64 " key/values", i + 1);
        gguf_kv *kv = &g->kvs[i];
        memset(kv, 0, sizeof *kv);
        g->n_kv = (int64_t)i + 1; /* from here close() frees kv->str_off */
        size_t at = c->pos;
        st = rd_str(c, &kv->key_off, &kv->key_len, "a key");
        if (st) return es_error_prefix(st, "key %" PRIu64, i);
        const char *key = (const char *)c->base + kv->key_off;
        printable(name, sizeof name, key, kv->key_len);
        if (memchr(key, 0, kv->key_len))
            return es_error(ES_ERR_FORMAT, "key '%s' at byte %zu contains a NUL byte", name, at);
        uint32_t type;
        st = rd_u32(c, &type, "a value type");
        if (!st && type >= ES_GGUF_VTYPE_COUNT)
            st = es_error(ES_ERR_FORMAT, "unknown value type %" PRIu32 " at byte %zu", type,
                          c->pos - 4);
        if (!st) {
            kv->type = (es_gguf_vtype)type;
            st = parse_kv_value(c, kv);
        }
        if (st) return es_error_prefix(st, "key '%s'", name);
    }
    /* index the keys; a duplicate is an error */
    st = name_index_init(&g->kv_ix, (size_t)g->n_kv);
    if (st) return st;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kvs[i];
        const char *key = (const char *)c->base + kv->key_off;
        size_t h = (size_t)hash_bytes(key, kv->key_len) & g->kv_ix.mask;
        for (;; h = (h + 1) & g->kv_ix.mask) {
            int64_t j = g->kv_ix.slot[h];
            if (j < 0) {
                g->kv_ix.slot[h] = i;
                break;
            }
            const gguf_kv *o = &g->kvs[j];
            if (o->key_len == kv->key_len && !memcmp(c->base + o->key_off, key, kv->key_len))
                return es_error(ES_ERR_FORMAT, "duplicate key '%s' at byte %zu (first at byte %zu)",
                                printable(name, sizeof name, key, kv->key_len), kv->key_off - 8,
                                o->key_off - 8);
        }
    }
    return ES_OK;
}

static const gguf_kv *find_kv(const es_gguf *g, const char *key, size_t len) {
    if (!g || !key || !g->kv_ix.slot) return NULL;
    size_t h = (size_t)hash_bytes(key, len) & g->kv_ix.mask;
    for (;; h = (h + 1) & g->kv_ix.mask) {
        int64_t j = g->kv_ix.slot[h];
        if (j < 0) return NULL;
        const gguf_kv *kv = &g->kvs[j];
        if (kv->key_len == len && !memcmp(g->base + kv->key_off, key, len)) return kv;
    }
}

/* Reads general.alignment if present (must be a u32 power of two). */
static es_status read_alignment(es_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = find_kv(g, GGUF_KEY_ALIGNMENT, strlen(GGUF_KEY_ALIGNMENT));
    if (!kv) return ES_OK;
    if (kv->type != ES_GGUF_UINT32)
        return es_error(ES_ERR_FORMAT, "key '%s' has type %s, expected u32", GGUF_KEY_ALIGNMENT,
                        vtype_name(kv->type));
    uint32_t a = ld32(g->base + kv->val_off);
    if (a == 0 || (a & (a - 1)) != 0)
        return es_error(ES_ERR_FORMAT, "%s = %" PRIu32 " is not a nonzero power of two",
                        GGUF_KEY_ALIGNMENT, a);
    g->alignment = a;
    return ES_OK;
}

/* First pass over tensor infos: names, dims, type, offset; extents are checked later. */
static es_status parse_tensor_info(es_gguf *g, cursor *c, int64_t i, size_t *name_off,
                                   size_t *name_len) {
    es_gguf_tensor *t = &g->tensors[i];
    char name[128];
    size_t at = c->pos;
    es_status st = rd_str(c, name_off, name_len, "a tensor name");
    if (st) return es_error_prefix(st, "tensor %" PRId64, i);
    const char *raw = (const char *)c->base + *name_off;
    printable(name, sizeof name, raw, *name_len);
    if (memchr(raw, 0, *name_len))
        return es_error(ES_ERR_FORMAT, "tensor '%s' at byte %zu: name contains a NUL byte", name,
                        at);
    uint32_t n_dims;
    st = rd_u32(c, &n_dims, "n_dims");
    if (st) return es_error_prefix(st, "tensor '%s'", name);
    if (n_dims < 1 || n_dims > ES_GGUF_MAX_DIMS)
        return es_error(ES_ERR_FORMAT,
                        "tensor '%s': n_dims %" PRIu32 " at byte %zu is not in 1..%d", name, n_dims,
                        c->pos - 4, ES_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    int64_t n_el = 1;
    for (int d = 0; d < ES_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t v;
        st = rd_u64(c, &v, "a dimension");
        if (st) return es_error_prefix(st, "tensor '%s'", name);
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return es_error(ES_ERR_FORMAT,
                            "tensor '%s': dimension %" PRIu32 " is %" PRId64
                            " at byte %zu (must be positive)",
                            name, d, (int64_t)v, c->pos - 8);
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(n_el, t->ne[d], &n_el))
            return es_error(ES_ERR_FORMAT,
                            "tensor '%s': element count overflows at dimension %" PRIu32
                            " (%" PRIu64 ")",
                            name, d, v);
    }
    uint32_t type;
    uint64_t offset;
    st = rd_u32(c, &type, "a tensor type");
    if (!st) st = rd_u64(c, &offset, "a tensor offset");
    if (st) return es_error_prefix(st, "tensor '%s'", name);
    const es_type_layout *tr = type <= INT_MAX ? es_type_layout_get((int)type) : NULL;
    if (!tr || tr->block_size <= 0 || tr->type_size == 0)
        return es_error(ES_ERR_FORMAT, "tensor '%s': unknown tensor type %" PRIu32, name, type);
    t->type = (int)type;
    if (t->ne[0] % tr->block_size != 0)
        return es_error(ES_ERR_FORMAT,
                        "tensor '%s': ne[0] = %" PRId64
                        " is not a multiple of the %s block size %" PRId64,
                        name, t->ne[0], tr->name, tr->block_size);
    size_t row = es_row_size(t->type, t->ne[0]);
    size_t rows = 1, nbytes;
    for (int d = 1; d < ES_GGUF_MAX_DIMS; d++)
        if ((uint64_t)t->ne[d] > SIZE_MAX || !es_mul_size(rows, (size_t)t->ne[d], &rows))
            rows = SIZE_MAX;
    if (row == 0 || rows == SIZE_MAX || !es_mul_size(row, rows, &nbytes))
        return es_error(ES_ERR_FORMAT, "tensor '%s': byte size overflows (%s, ne0 %" PRId64 ")",
                        name, tr->name, t->ne[0]);
    t->nbytes = nbytes;
    t->offset = offset;
    return ES_OK;
}

static es_status parse_tensors(es_gguf *g, cursor *c, uint64_t n_tensors) {
    /* smallest info: empty name (8) + n_dims (4) + one dim (8) + type (4) + offset (8) */
    if (n_tensors > left(c) / 32)
        return es_error(ES_ERR_FORMAT,
                        "header claims %" PRIu64 " tensors but only %zu bytes follow", n_tensors,
                        left(c));
    size_t n = (size_t)n_tensors, cap = 0, cap_at = 0, names_len = 0;
    size_t(*name_at)[2] = NULL; /* [n][offset, length] of each name in the image */
    es_status st = ES_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (!grow((void **)&g->tensors, &cap, i + 1, sizeof *g->tensors) ||
            !grow((void **)&name_at, &cap_at, i + 1, sizeof *name_at)) {
            st = es_error(ES_ERR_NOMEM, "out of memory for %zu tensor infos", i + 1);
            break;
        }
        memset(&g->tensors[i], 0, sizeof g->tensors[i]);
        st = parse_tensor_info(g, c, (int64_t)i, &name_at[i][0], &name_at[i][1]);
        names_len += name_at[i][1] + 1; /* names lie inside the image: no overflow */
    }
    if (!st) st = name_index_init(&g->t_ix, n);
    if (!st) {
        g->names = malloc(names_len ? names_len : 1);
        if (!g->names)
            st = es_error(ES_ERR_NOMEM, "out of memory for %zu bytes of names", names_len);
    }
    char *dst = g->names;
    for (size_t i = 0; i < n && !st; i++) {
        es_gguf_tensor *t = &g->tensors[i];
        size_t off = name_at[i][0], len = name_at[i][1];
        memcpy(dst, c->base + off, len);
        dst[len] = '\0';
        t->name = dst;
        dst += len + 1;
        g->n_tensors = (int64_t)i + 1;
        size_t h = (size_t)hash_bytes(t->name, len) & g->t_ix.mask;
        for (;; h = (h + 1) & g->t_ix.mask) {
            int64_t j = g->t_ix.slot[h];
            if (j < 0) {
                g->t_ix.slot[h] = (int64_t)i;
                break;
            }
            if (!strcmp(g->tensors[j].name, t->name)) {
                char name[128];
                st = es_error(ES_ERR_FORMAT,
                              "duplicate tensor name '%s' (tensors %" PRId64 " and %zu, byte %zu)",
                              printable(name, sizeof name, t->name, len), j, i, off - 8);
                break;
            }
        }
    }
    free(name_at);
    return st;
}

/* Places the data section and checks each tensor's offset and extent. */
static es_status check_extents(es_gguf *g, size_t infos_end) {
    size_t a = g->alignment, data_off;
    if (!es_add_size(infos_end, a - 1, &data_off))
        return es_error(ES_ERR_FORMAT, "data section offset overflows");
    data_off &= ~(a - 1);
    g->data_off = data_off;
    char name[128];
    for (int64_t i = 0; i < g->n_tensors; i++) {
        es_gguf_tensor *t = &g->tensors[i];
        printable(name, sizeof name, t->name, strlen(t->name));
        if (t->offset % a != 0)
            return es_error(ES_ERR_FORMAT,
                            "tensor '%s': offset %" PRIu64
                            " is not a multiple of the alignment %zu",
                            name, t->offset, a);
        size_t start, end;
        if (t->offset > SIZE_MAX || !es_add_size(data_off, (size_t)t->offset, &start) ||
            !es_add_size(start, t->nbytes, &end) || end > g->size)
            return es_error(ES_ERR_FORMAT,
                            "tensor '%s': %zu bytes at offset %" PRIu64 " (file byte %zu + %" PRIu64
                            ") run past the end of the file (%zu bytes)",
                            name, t->nbytes, t->offset, data_off, t->offset, g->size);
        t->data = g->base + start;
    }
    return ES_OK;
}

static es_status parse(es_gguf *g) {
    cursor c = {g->base, g->size, 0};
    if (g->size == 0) return es_error(ES_ERR_FORMAT, "file is empty (0 bytes)");
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4) != 0) {
        char m[16];
        printable(m, sizeof m, (const char *)g->base, g->size < 4 ? g->size : 4);
        return es_error(ES_ERR_FORMAT, "bad magic '%s' (expected 'GGUF'; %zu bytes)", m, g->size);
    }
    c.pos = 4;
    uint32_t version;
    es_status st = rd_u32(&c, &version, "the version");
    if (st) return st;
    if (version != 2 && version != 3) {
        uint32_t swapped = __builtin_bswap32(version);
        if (swapped >= 1 && swapped <= 3)
            return es_error(
                ES_ERR_FORMAT,
                "big-endian (byte-swapped) file of version %" PRIu32 " is not supported", swapped);
        return es_error(ES_ERR_FORMAT, "version %" PRIu32 " is not supported (need 2 or 3)",
                        version);
    }
    g->version = version;
    uint64_t n_tensors, n_kv;
    st = rd_u64(&c, &n_tensors, "the tensor count");
    if (!st) st = rd_u64(&c, &n_kv, "the key/value count");
    if (!st) st = parse_kvs(g, &c, n_kv);
    if (!st) st = read_alignment(g);
    if (!st) st = parse_tensors(g, &c, n_tensors);
    if (!st) st = check_extents(g, c.pos);
    return st;
}

void es_gguf_close(es_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++)
        free(g->kvs[i].str_off);
    free(g->kvs);
    free(g->kv_ix.slot);
    free(g->tensors);
    free(g->names);
    free(g->t_ix.slot);
    if (g->map) munmap(g->map, g->size);
    free(g->path);
    free(g);
}

es_status es_gguf_open_memory(const void *data, size_t size, es_gguf **out) {
    if (!out || (!data && size)) return es_error(ES_ERR_INVALID_ARG, "gguf: NULL argument");
    es_gguf *g = es_calloc(1, sizeof *g);
    if (!g) return ES_ERR_NOMEM;
    g->base = data ? data : (const uint8_t *)"";
    g->size = size;
    g->path = es_strdup("");
    es_status st = g->path ? parse(g) : ES_ERR_NOMEM;
    if (st) {
        es_gguf_close(g);
        return es_error_prefix(st, "gguf");
    }
    *out = g;
    return ES_OK;
}

es_status es_gguf_open(const char *path, es_gguf **out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "gguf: NULL argument");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return es_error(ES_ERR_IO, "gguf: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return es_error(ES_ERR_IO, "gguf: cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return es_error(ES_ERR_IO, "gguf: '%s' is not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return es_error(ES_ERR_FORMAT, "gguf: %s: file is empty (0 bytes)", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return es_error(ES_ERR_IO, "gguf: '%s' is too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    if (map != MAP_FAILED) posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    close(fd);
    if (map == MAP_FAILED)
        return es_error(ES_ERR_IO, "gguf: cannot map '%s' (%zu bytes): %s", path, size,
                        strerror(e));
    es_gguf *g = es_calloc(1, sizeof *g);
    if (!g) {
        munmap(map, size);
        return ES_ERR_NOMEM;
    }
    g->map = map;
    g->base = map;
    g->size = size;
    g->path = es_strdup(path);
    es_status st = g->path ? parse(g) : ES_ERR_NOMEM;
    if (st) {
        es_gguf_close(g);
        return es_error_prefix(st, "gguf: %s", path);
    }
    *out = g;
    return ES_OK;
}

uint32_t es_gguf_version(const es_gguf *g) {
    return g ? g->version : 0;
}
size_t es_gguf_alignment(const es_gguf *g) {
    return g ? g->alignment : 0;
}
const char *es_gguf_path(const es_gguf *g) {
    return g && g->path ? g->path : "";
}

/* ---- key/value metadata ---- */

int64_t es_gguf_n_kv(const es_gguf *g) {
    return g ? g->n_kv : 0;
}

int64_t es_gguf_find_key(const es_gguf *g, const char *key) {
    const gguf_kv *kv = key ? find_kv(g, key, strlen(key)) : NULL;
    return kv ? (int64_t)(kv - g->kvs) : -1;
}

es_gguf_str es_gguf_key(const es_gguf *g, int64_t i) {
    es_gguf_str s = {NULL, 0};
    if (!g || i < 0 || i >= g->n_kv) return s;
    s.ptr = (const char *)g->base + g->kvs[i].key_off;
    s.len = g->kvs[i].key_len;
    return s;
}

es_gguf_vtype es_gguf_kv_type(const es_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_kv) return ES_GGUF_VTYPE_COUNT;
    return g->kvs[i].type;
}

/* Finds key; on failure sets the message (NOT_FOUND). */
static es_status lookup(const es_gguf *g, const char *key, const gguf_kv **out) {
    if (!g || !key) return es_error(ES_ERR_INVALID_ARG, "gguf: NULL argument");
    *out = find_kv(g, key, strlen(key));
    if (!*out) return es_error(ES_ERR_NOT_FOUND, "gguf: key '%s' not found", key);
    return ES_OK;
}

static es_status mismatch(const char *key, const char *expected, const gguf_kv *kv) {
    if (kv->type == ES_GGUF_ARRAY)
        return es_error(ES_ERR_FORMAT, "gguf: key '%s' has type array of %s, expected %s", key,
                        vtype_name(kv->elem_type), expected);
    return es_error(ES_ERR_FORMAT, "gguf: key '%s' has type %s, expected %s", key,
                    vtype_name(kv->type), expected);
}

/* An integer scalar at p of type t as sign + magnitude. */
static void load_int(const uint8_t *p, uint32_t t, bool *neg, uint64_t *mag) {
    int64_t s = 0;
    uint64_t u = 0;
    bool is_signed = true;
    switch (t) {
    case ES_GGUF_UINT8:
        u = p[0];
        is_signed = false;
        break;
    case ES_GGUF_INT8: s = (int8_t)p[0]; break;
    case ES_GGUF_UINT16:
        u = ld16(p);
        is_signed = false;
        break;
    case ES_GGUF_INT16: s = (int16_t)ld16(p); break;
    case ES_GGUF_UINT32:
        u = ld32(p);
        is_signed = false;
        break;
    case ES_GGUF_INT32: s = (int32_t)ld32(p); break;
    case ES_GGUF_UINT64:
        u = ld64(p);
        is_signed = false;
        break;
    default: s = (int64_t)ld64(p); break; /* INT64 */
    }
    if (is_signed) {
        *neg = s < 0;
        *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    } else {
        *neg = false;
        *mag = u;
    }
}

static double load_float(const uint8_t *p, uint32_t t) {
    if (t == ES_GGUF_FLOAT32) {
        uint32_t b = ld32(p);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    uint64_t b = ld64(p);
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* The integer value of key, any integer type, as sign and magnitude. */
static es_status lookup_int(const es_gguf *g, const char *key, bool *neg, uint64_t *mag) {
    const gguf_kv *kv;
    es_status st = lookup(g, key, &kv);
    if (st) return st;
    if (!vtype_is_int(kv->type)) return mismatch(key, "an integer", kv);
    load_int(g->base + kv->val_off, kv->type, neg, mag);
    return ES_OK;
}

es_status es_gguf_get_u32(const es_gguf *g, const char *key, uint32_t *out) {
    bool neg;
    uint64_t mag;
    es_status st = lookup_int(g, key, &neg, &mag);
    if (st) return st;
    if (neg || mag > UINT32_MAX)
        return es_error(ES_ERR_FORMAT, "gguf: key '%s': value %s%" PRIu64 " does not fit u32", key,
                        neg ? "-" : "", mag);
    *out = (uint32_t)mag;
    return ES_OK;
}

es_status es_gguf_get_i64(const es_gguf *g, const char *key, int64_t *out) {
    bool neg;
    uint64_t mag;
    es_status st = lookup_int(g, key, &neg, &mag);
    if (st) return st;
    if (!neg && mag > (uint64_t)INT64_MAX)
        return es_error(ES_ERR_FORMAT, "gguf: key '%s': value %" PRIu64 " does not fit i64", key,
                        mag);
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag; /* two's complement: -2^63 round-trips */
    return ES_OK;
}

es_status es_gguf_get_f32(const es_gguf *g, const char *key, float *out) {
    const gguf_kv *kv;
    es_status st = lookup(g, key, &kv);
    if (st) return st;
    if (!vtype_is_float(kv->type)) return mismatch(key, "f32 or f64", kv);
    *out = (float)load_float(g->base + kv->val_off, kv->type);
    return ES_OK;
}

es_status es_gguf_get_bool(const es_gguf *g, const char *key, bool *out) {
    const gguf_kv *kv;
    es_status st = lookup(g, key, &kv);
    if (st) return st;
    if (kv->type != ES_GGUF_BOOL) return mismatch(key, "bool", kv);
    *out = g->base[kv->val_off] != 0;
    return ES_OK;
}

es_status es_gguf_get_str(const es_gguf *g, const char *key, es_gguf_str *out) {
    const gguf_kv *kv;
    es_status st = lookup(g, key, &kv);
    if (st) return st;
    if (kv->type != ES_GGUF_STRING) return mismatch(key, "string", kv);
    out->len = ld64(g->base + kv->val_off);
    out->ptr = (const char *)g->base + kv->val_off + 8;
    return ES_OK;
}

char *es_gguf_get_str_dup(const es_gguf *g, const char *key) {
    es_gguf_str s;
    if (es_gguf_get_str(g, key, &s) != ES_OK) return NULL;
    char *d = malloc((size_t)s.len + 1); /* s.len < image size */
    if (!d) {
        es_error(ES_ERR_NOMEM, "gguf: out of memory copying key '%s'", key);
        return NULL;
    }
    memcpy(d, s.ptr, (size_t)s.len);
    d[s.len] = '\0';
    return d;
}

es_status es_gguf_get_arr(const es_gguf *g, const char *key, es_gguf_vtype *elem_type,
                          uint64_t *n) {
    const gguf_kv *kv;
    es_status st = lookup(g, key, &kv);
    if (st) return st;
    if (kv->type != ES_GGUF_ARRAY) return mismatch(key, "array", kv);
    if (elem_type) *elem_type = kv->elem_type;
    if (n) *n = kv->n;
    return ES_OK;
}

const void *es_gguf_arr_data(const es_gguf *g, const char *key) {
    const gguf_kv *kv = key ? find_kv(g, key, strlen(key)) : NULL;
    if (!kv || kv->type != ES_GGUF_ARRAY || vtype_size(kv->elem_type) == 0) return NULL;
    return g->base + kv->val_off;
}

es_gguf_str es_gguf_arr_str(const es_gguf *g, const char *key, uint64_t i) {
    es_gguf_str s = {NULL, 0};
    const gguf_kv *kv = key ? find_kv(g, key, strlen(key)) : NULL;
    if (!kv || kv->type != ES_GGUF_ARRAY || kv->elem_type != ES_GGUF_STRING || i >= kv->n) return s;
    const uint8_t *p = g->base + kv->str_off[i];
    s.len = ld64(p);
    s.ptr = (const char *)p + 8;
    return s;
}

/* Looks up a numeric array of exactly n elements. */
static es_status numeric_array(const es_gguf *g, const char *key, uint64_t n, const gguf_kv **out) {
    const gguf_kv *kv;
    es_status st = lookup(g, key, &kv);
    if (st) return st;
    if (kv->type != ES_GGUF_ARRAY ||
        !(vtype_is_int(kv->elem_type) || vtype_is_float(kv->elem_type)))
        return mismatch(key, "a numeric array", kv);
    if (kv->n != n)
        return es_error(ES_ERR_FORMAT, "gguf: key '%s' has %" PRIu64 " elements, expected %" PRIu64,
                        key, kv->n, n);
    *out = kv;
    return ES_OK;
}

es_status es_gguf_arr_to_f32(const es_gguf *g, const char *key, float *out, uint64_t n) {
    const gguf_kv *kv;
    es_status st = numeric_array(g, key, n, &kv);
    if (st) return st;
    size_t sz = vtype_size(kv->elem_type);
    const uint8_t *p = g->base + kv->val_off;
    for (uint64_t i = 0; i < n; i++, p += sz) {
        if (vtype_is_float(kv->elem_type)) {
            out[i] = (float)load_float(p, kv->elem_type);
        } else {
            bool neg;
            uint64_t mag;
            load_int(p, kv->elem_type, &neg, &mag);
            out[i] = neg ? -(float)mag : (float)mag;
        }
    }
    return ES_OK;
}

/* Element i of a numeric array as an i32, or false if it is not an integer in range. */
static bool elem_i32(const uint8_t *p, uint32_t t, int32_t *v) {
    if (vtype_is_float(t)) {
        double d = load_float(p, t);
        if (!(d >= INT32_MIN && d <= INT32_MAX) || d != floor(d)) return false;
        *v = (int32_t)d;
        return true;
    }
    bool neg;
    uint64_t mag;
    load_int(p, t, &neg, &mag);
    if (neg ? mag > (uint64_t)INT32_MAX + 1 : mag > INT32_MAX) return false;
    *v = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
    return true;
}

es_status es_gguf_arr_to_i32(const es_gguf *g, const char *key, int32_t *out, uint64_t n) {
    const gguf_kv *kv;
    es_status st = numeric_array(g, key, n, &kv);
    if (st) return st;
    size_t sz = vtype_size(kv->elem_type);
    const uint8_t *base = g->base + kv->val_off;
    int32_t v;
    for (uint64_t i = 0; i < n; i++) /* check all first: out is untouched on failure */
        if (!elem_i32(base + i * sz, kv->elem_type, &v))
            return es_error(ES_ERR_FORMAT,
                            "gguf: key '%s': element %" PRIu64
                            " (%s) is not an integer in the i32 range",
                            key, i, vtype_name(kv->elem_type));
    for (uint64_t i = 0; i < n; i++)
        elem_i32(base + i * sz, kv->elem_type, &out[i]);
    return ES_OK;
}

/* ---- tensors ---- */

int64_t es_gguf_n_tensors(const es_gguf *g) {
    return g ? g->n_tensors : 0;
}

const es_gguf_tensor *es_gguf_tensor_at(const es_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_tensors) return NULL;
    return &g->tensors[i];
}

const es_gguf_tensor *es_gguf_find_tensor(const es_gguf *g, const char *name) {
    if (!g || !name || !g->t_ix.slot) return NULL;
    size_t h = (size_t)hash_bytes(name, strlen(name)) & g->t_ix.mask;
    for (;; h = (h + 1) & g->t_ix.mask) {
        int64_t j = g->t_ix.slot[h];
        if (j < 0) return NULL;
        if (!strcmp(g->tensors[j].name, name)) return &g->tensors[j];
    }
}

/* ------------------------------------------------------------------------- */
/* The writer                                                                */
/* ------------------------------------------------------------------------- */

typedef struct wkv {
    char *key;
    es_gguf_vtype type;
    uint8_t *payload; /* the value as stored in the file [n] */
    size_t n;
} wkv;

typedef struct wtensor {
    char *name;
    int type;
    int n_dims;
    int64_t ne[ES_GGUF_MAX_DIMS];
    size_t nbytes;
    void *data; /* [nbytes] */
} wtensor;

struct es_gguf_writer {
    wkv *kvs; /* [n_kv] in insertion order */
    size_t n_kv, cap_kv;
    wtensor *tensors; /* [n_tensors] in insertion order */
    size_t n_tensors, cap_tensors;
};

es_gguf_writer *es_gguf_writer_new(void) {
    return es_calloc(1, sizeof(es_gguf_writer));
}

void es_gguf_writer_free(es_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].payload);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* Stores key = (type, payload); takes ownership of payload (freed on failure). */
static es_status set_payload(es_gguf_writer *w, const char *key, es_gguf_vtype type,
                             uint8_t *payload, size_t n) {
    if (!w || !key) {
        free(payload);
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: NULL argument");
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (!strcmp(w->kvs[i].key, key)) { /* keep the position, replace the value */
            free(w->kvs[i].payload);
            w->kvs[i].type = type;
            w->kvs[i].payload = payload;
            w->kvs[i].n = n;
            return ES_OK;
        }
    }
    char *k = es_strdup(key);
    if (!k || !grow((void **)&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs)) {
        free(k);
        free(payload);
        return es_error(ES_ERR_NOMEM, "gguf writer: out of memory adding key '%s'", key);
    }
    w->kvs[w->n_kv++] = (wkv){k, type, payload, n};
    return ES_OK;
}

static es_status set_copy(es_gguf_writer *w, const char *key, es_gguf_vtype type, const void *bytes,
                          size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return es_error(ES_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key ? key : "");
    if (n) memcpy(p, bytes, n);
    return set_payload(w, key, type, p, n);
}

static void st32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void st64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

es_status es_gguf_writer_set_val(es_gguf_writer *w, const char *key, es_gguf_vtype type,
                                 const void *value) {
    size_t sz = vtype_size(type);
    if (sz == 0 || !value)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: key '%s': type %s is not a scalar",
                        key ? key : "", vtype_name(type));
    return set_copy(w, key, type, value, sz); /* host order: little-endian hosts only */
}

es_status es_gguf_writer_set_u32(es_gguf_writer *w, const char *key, uint32_t v) {
    uint8_t b[4];
    st32(b, v);
    return set_copy(w, key, ES_GGUF_UINT32, b, 4);
}

es_status es_gguf_writer_set_i32(es_gguf_writer *w, const char *key, int32_t v) {
    uint8_t b[4];
    st32(b, (uint32_t)v);
    return set_copy(w, key, ES_GGUF_INT32, b, 4);
}

es_status es_gguf_writer_set_u64(es_gguf_writer *w, const char *key, uint64_t v) {
    uint8_t b[8];
    st64(b, v);
    return set_copy(w, key, ES_GGUF_UINT64, b, 8);
}

es_status es_gguf_writer_set_f32(es_gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    uint8_t b[4];
    st32(b, bits);
    return set_copy(w, key, ES_GGUF_FLOAT32, b, 4);
}

es_status es_gguf_writer_set_bool(es_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_copy(w, key, ES_GGUF_BOOL, &b, 1);
}

es_status es_gguf_writer_set_str(es_gguf_writer *w, const char *key, const char *v) {
    if (!v)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string", key ? key : "");
    size_t len = strlen(v), n;
    if (!es_add_size(len, 8, &n)) return es_error(ES_ERR_NOMEM, "gguf writer: string too long");
    uint8_t *p = malloc(n);
    if (!p)
        return es_error(ES_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key ? key : "");
    st64(p, len);
    memcpy(p + 8, v, len);
    return set_payload(w, key, ES_GGUF_STRING, p, n);
}

es_status es_gguf_writer_set_arr(es_gguf_writer *w, const char *key, es_gguf_vtype elem_type,
                                 const void *data, uint64_t n) {
    size_t sz = vtype_size(elem_type), bytes, total;
    if (sz == 0)
        return es_error(ES_ERR_INVALID_ARG,
                        "gguf writer: key '%s': %s is not a numeric element type", key ? key : "",
                        vtype_name(elem_type));
    if (!data && n)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: key '%s': NULL data", key ? key : "");
    if (n > SIZE_MAX || !es_mul_size((size_t)n, sz, &bytes) || !es_add_size(bytes, 12, &total))
        return es_error(ES_ERR_NOMEM, "gguf writer: array of %" PRIu64 " elements is too large", n);
    uint8_t *p = malloc(total);
    if (!p)
        return es_error(ES_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key ? key : "");
    st32(p, (uint32_t)elem_type);
    st64(p + 4, n);
    if (bytes) memcpy(p + 12, data, bytes);
    return set_payload(w, key, ES_GGUF_ARRAY, p, total);
}

es_status es_gguf_writer_set_arr_str(es_gguf_writer *w, const char *key, const char *const *v,
                                     uint64_t n) {
    if (!v && n)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: key '%s': NULL strings", key ? key : "");
    size_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i])
            return es_error(ES_ERR_INVALID_ARG, "gguf writer: key '%s': string %" PRIu64 " is NULL",
                            key ? key : "", i);
        if (!es_add_size(total, 8, &total) || !es_add_size(total, strlen(v[i]), &total))
            return es_error(ES_ERR_NOMEM, "gguf writer: string array too large");
    }
    uint8_t *p = malloc(total);
    if (!p)
        return es_error(ES_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key ? key : "");
    st32(p, ES_GGUF_STRING);
    st64(p + 4, n);
    size_t at = 12;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        st64(p + at, len);
        memcpy(p + at + 8, v[i], len);
        at += 8 + len;
    }
    return set_payload(w, key, ES_GGUF_ARRAY, p, total);
}

es_status es_gguf_writer_set_raw(es_gguf_writer *w, const char *key, es_gguf_vtype type,
                                 const void *value, size_t n) {
    if (!value && n)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: key '%s': NULL value", key ? key : "");
    cursor c = {value ? value : (const uint8_t *)"", n, 0};
    es_status st = type < ES_GGUF_VTYPE_COUNT
                       ? skip_value(&c, type, 0)
                       : es_error(ES_ERR_FORMAT, "unknown value type %d", (int)type);
    if (!st && c.pos != n) st = es_error(ES_ERR_FORMAT, "value ends at byte %zu of %zu", c.pos, n);
    if (st) return es_error_prefix(ES_ERR_INVALID_ARG, "gguf writer: key '%s'", key ? key : "");
    return set_copy(w, key, type, value, n);
}

es_status es_gguf_writer_add_tensor(es_gguf_writer *w, const char *name, es_type type, int n_dims,
                                    const int64_t *ne, const void *data) {
    if (!w || !name || !ne || !data)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: NULL argument");
    if (n_dims < 1 || n_dims > ES_GGUF_MAX_DIMS)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %d is not in 1..%d",
                        name, n_dims, ES_GGUF_MAX_DIMS);
    const es_type_layout *tr = es_type_layout_get(type);
    if (!tr || tr->type_size == 0)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: tensor '%s': unknown tensor type %d",
                        name, type);
    wtensor t = {0};
    t.type = type;
    t.n_dims = n_dims;
    size_t rows = 1;
    for (int d = 0; d < ES_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] <= 0)
            return es_error(ES_ERR_INVALID_ARG,
                            "gguf writer: tensor '%s': ne[%d] = %" PRId64 " is not positive", name,
                            d, t.ne[d]);
        if (d > 0 && ((uint64_t)t.ne[d] > SIZE_MAX || !es_mul_size(rows, (size_t)t.ne[d], &rows)))
            return es_error(ES_ERR_INVALID_ARG, "gguf writer: tensor '%s': size overflows", name);
    }
    size_t row = es_row_size(type, t.ne[0]);
    if (row == 0)
        return es_error(ES_ERR_INVALID_ARG,
                        "gguf writer: tensor '%s': ne[0] = %" PRId64
                        " is not a multiple of the %s block size %" PRId64,
                        name, t.ne[0], tr->name, tr->block_size);
    int64_t n_el = t.ne[0];
    bool overflow = !es_mul_size(row, rows, &t.nbytes);
    for (int d = 1; d < ES_GGUF_MAX_DIMS; d++)
        overflow = overflow || __builtin_mul_overflow(n_el, t.ne[d], &n_el);
    if (overflow)
        return es_error(ES_ERR_INVALID_ARG, "gguf writer: tensor '%s': size overflows", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return es_error(ES_ERR_INVALID_ARG, "gguf writer: duplicate tensor name '%s'", name);
    t.name = es_strdup(name);
    t.data = malloc(t.nbytes ? t.nbytes : 1);
    if (!t.name || !t.data ||
        !grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors + 1, sizeof *w->tensors)) {
        free(t.name);
        free(t.data);
        return es_error(ES_ERR_NOMEM, "gguf writer: out of memory adding tensor '%s' (%zu bytes)",
                        name, t.nbytes);
    }
    memcpy(t.data, data, t.nbytes);
    w->tensors[w->n_tensors++] = t;
    return ES_OK;
}

/* Output: a FILE, a buffer, or neither (counting only). */
typedef struct sink {
    FILE *f;
    uint8_t *buf;
    size_t pos;
    bool failed;
} sink;

static void put(sink *s, const void *p, size_t n) {
    if (s->failed || n == 0) return;
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n) s->failed = true;
    } else if (s->buf) {
        memcpy(s->buf + s->pos, p, n);
    }
    s->pos += n;
}

static void put32(sink *s, uint32_t v) {
    uint8_t b[4];
    st32(b, v);
    put(s, b, 4);
}

static void put64(sink *s, uint64_t v) {
    uint8_t b[8];
    st64(b, v);
    put(s, b, 8);
}

static void pad(sink *s, size_t alignment) {
    static const uint8_t zeros[64];
    size_t n = (alignment - s->pos % alignment) % alignment;
    while (n > 0) {
        size_t k = ES_MIN(n, sizeof zeros);
        put(s, zeros, k);
        n -= k;
    }
}

/* The alignment the file will declare: general.alignment if set (u32 power of two), else 32. */
static es_status writer_alignment(const es_gguf_writer *w, size_t *out) {
    *out = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, GGUF_KEY_ALIGNMENT) != 0) continue;
        uint32_t a = w->kvs[i].type == ES_GGUF_UINT32 ? ld32(w->kvs[i].payload) : 0;
        if (a == 0 || (a & (a - 1)) != 0)
            return es_error(ES_ERR_INVALID_ARG,
                            "gguf writer: %s must be a u32 nonzero power of two",
                            GGUF_KEY_ALIGNMENT);
        *out = a;
    }
    return ES_OK;
}

static void emit(const es_gguf_writer *w, size_t alignment, sink *s) {
    put(s, GGUF_MAGIC, 4);
    put32(s, 3);
    put64(s, w->n_tensors);
    put64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        size_t len = strlen(kv->key);
        put64(s, len);
        put(s, kv->key, len);
        put32(s, (uint32_t)kv->type);
        put(s, kv->payload, kv->n);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        size_t len = strlen(t->name);
        put64(s, len);
        put(s, t->name, len);
        put32(s, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put64(s, (uint64_t)t->ne[d]);
        put32(s, (uint32_t)t->type);
        put64(s, offset);
        offset += (t->nbytes + alignment - 1) / alignment * alignment;
    }
    pad(s, alignment);
    for (size_t i = 0; i < w->n_tensors; i++) {
        put(s, w->tensors[i].data, w->tensors[i].nbytes);
        pad(s, alignment);
    }
}

es_status es_gguf_writer_write_memory(const es_gguf_writer *w, uint8_t **out, size_t *size) {
    if (!w || !out || !size) return es_error(ES_ERR_INVALID_ARG, "gguf writer: NULL argument");
    size_t alignment;
    es_status st = writer_alignment(w, &alignment);
    if (st) return st;
    sink count = {0};
    emit(w, alignment, &count);
    uint8_t *buf = malloc(count.pos);
    if (!buf) return es_error(ES_ERR_NOMEM, "gguf writer: out of memory for %zu bytes", count.pos);
    sink s = {NULL, buf, 0, false};
    emit(w, alignment, &s);
    *out = buf;
    *size = s.pos;
    return ES_OK;
}

es_status es_gguf_writer_write(const es_gguf_writer *w, const char *path) {
    if (!w || !path) return es_error(ES_ERR_INVALID_ARG, "gguf writer: NULL argument");
    size_t alignment;
    es_status st = writer_alignment(w, &alignment);
    if (st) return st;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return es_error(ES_ERR_NOMEM, "gguf writer: out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = es_error(ES_ERR_IO, "gguf writer: cannot create a temporary file for '%s': %s", path,
                      strerror(errno));
        free(tmp);
        return st;
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        st = es_error(ES_ERR_IO, "gguf writer: cannot open '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    sink s = {f, NULL, 0, false};
    emit(w, alignment, &s);
    int e = s.failed ? errno : 0;
    if (!e && fflush(f) != 0) e = errno;
    if (!e && fsync(fd) != 0) e = errno;
    if (fclose(f) != 0 && !e) e = errno;
    if (e) {
        st = es_error(ES_ERR_IO, "gguf writer: cannot write '%s': %s", path, strerror(e));
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        st = es_error(ES_ERR_IO, "gguf writer: cannot rename '%s' to '%s': %s", tmp, path,
                      strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return ES_OK;
}
