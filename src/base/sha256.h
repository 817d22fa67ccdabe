/*
 * sha256.h — SHA-256 (FIPS 180-4, section 6.2) of memory and of files, used to record
 * which model and emotion-vector files an evaluation ran on (results.json).
 * Written from the specification; checked against the FIPS/NIST example vectors in
 * tests/test_eval_io.c.
 */
#ifndef ES_SHA256_H
#define ES_SHA256_H

#include "emosteer.h"

#include <stddef.h>
#include <stdint.h>

#define ES_SHA256_BYTES 32
/* ES_SHA256_HEX and es_sha256_file are public (emosteer.h). */

/* Incremental state. Initialise with es_sha256_init, feed with es_sha256_update any
 * number of times, finish with es_sha256_final (after which the state must be
 * re-initialised before reuse). */
typedef struct es_sha256_ctx {
    uint32_t h[8];     /* chaining value H(i) */
    uint64_t n_bytes;  /* message length so far */
    uint8_t block[64]; /* partial block */
    size_t n_block;    /* bytes used in block, < 64 */
} es_sha256_ctx;

void es_sha256_init(es_sha256_ctx *s);
void es_sha256_update(es_sha256_ctx *s, const void *data, size_t n);
void es_sha256_final(es_sha256_ctx *s, uint8_t digest[ES_SHA256_BYTES]);

/* One-shot digest of n bytes. */
void es_sha256(const void *data, size_t n, uint8_t digest[ES_SHA256_BYTES]);

/* Lower-case hex of a digest into hex[65] (NUL-terminated). */
void es_sha256_hex(const uint8_t digest[ES_SHA256_BYTES], char hex[ES_SHA256_HEX]);

#endif /* ES_SHA256_H */
