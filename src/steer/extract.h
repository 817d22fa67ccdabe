/*
 * extract.h — internal parts of emotion-vector extraction (public API: the
 * "Extraction" section of emosteer.h):
 *   - pairs files for teacher forcing (--pairs): JSON Lines, one object per line
 *       {"query": "...", "emotion": "joy", "neutral": "...", "emotional": "..."}
 *     blank lines are skipped, other keys ignored; every field a non-empty string,
 *     emotion a valid EV name other than "neutral" and "base". Errors name the file
 *     and the 1-based line.
 *   - checkpoint files (OUT.ev.gguf.partial) holding per-sample features as they are
 *     computed, so an interrupted extraction resumes where it stopped.
 *
 * Checkpoint format (little-endian, as the machine writes it):
 *   header:  "ESXCKPT1" (8 bytes), u32 n_layer, u32 n_embd, u32 settings_len,
 *            settings[settings_len] (text "key=value\n" lines identifying the model
 *            and the run), u64 FNV-1a of everything before it
 *   records: u32 0x52435845 ("EXCR"), u32 sample, u32 n_resp, u32 0,
 *            f32 mean[n_layer][n_embd], f32 norm[n_layer],
 *            u64 FNV-1a of the record before the checksum
 * A truncated or corrupt record ends the readable part: it and everything after it
 * are dropped (the file is cut there) and computed again.
 */
#ifndef ES_EXTRACT_H
#define ES_EXTRACT_H

#include "common.h"

#include <stdio.h>

/* ---- pairs (src/extract_io.c) ---- */

typedef struct es_extract_pair {
    char *query, *emotion, *neutral, *emotional; /* owned */
    int line;                                    /* 1-based line in the file */
} es_extract_pair;

/* Reads a pairs file. *pairs is an array of *n (>= 1) pairs owned by the caller
 * (es_extract_pairs_free). Malformed lines fail with ES_ERR_FORMAT naming
 * "path:line"; a file without pairs fails with ES_ERR_FORMAT. */
es_status es_extract_pairs_load(const char *path, es_extract_pair **pairs, int *n);
/* The same from memory (`name` is used in messages). */
es_status es_extract_pairs_parse(const char *text, size_t len, const char *name,
                                 es_extract_pair **pairs, int *n);
void es_extract_pairs_free(es_extract_pair *pairs, int n);

/* Tokenizes a response for teacher forcing: no BOS/EOS, no special parsing.
 * *toks is malloc'ed; an empty response gives n_toks 0 and a valid pointer. */
es_status es_extract_tokenize_response(const es_vocab *vocab, const char *text, int32_t **toks,
                                       int *n_toks);

/* ---- checkpoints (src/extract_io.c) ---- */

typedef struct es_extract_ckpt es_extract_ckpt;

/* Called for each valid record read on resume. Returning an error stops the load
 * (the status is returned by es_extract_ckpt_open). */
typedef es_status (*es_extract_ckpt_fn)(void *user, int sample, int n_resp, const float *mean,
                                        const float *norm);

/* Opens the checkpoint at `path`. With resume and an existing file: its header must
 * match n_layer, n_embd and `settings` exactly (else ES_ERR_INVALID_ARG naming the
 * first differing line), every valid record is passed to fn, and the file is cut
 * after the last valid record; *n_loaded gets the count. Otherwise (no resume, or no
 * file yet) the file is created or emptied and a header written; *n_loaded = 0.
 * *out is owned by the caller (es_extract_ckpt_close). */
es_status es_extract_ckpt_open(const char *path, const char *settings, int n_layer, int n_embd,
                               bool resume, es_extract_ckpt_fn fn, void *user, int *n_loaded,
                               es_extract_ckpt **out);
/* Appends one record (mean[n_layer][n_embd], norm[n_layer]) and flushes it. */
es_status es_extract_ckpt_append(es_extract_ckpt *c, int sample, int n_resp, const float *mean,
                                 const float *norm);
/* Closes the file (NULL is a no-op). */
void es_extract_ckpt_close(es_extract_ckpt *c);

/* FNV-1a 64-bit hash of n bytes, continuing from h (start with ES_FNV_INIT). */
#define ES_FNV_INIT 0xcbf29ce484222325ull
uint64_t es_fnv1a(uint64_t h, const void *data, size_t n);

#endif /* ES_EXTRACT_H */
