/*
 * scorers.h — internal pieces of the model-based evaluation scorers (src/scorers.c):
 * a teacher-forcing driver that packs token segments of several sequences into
 * es_decode batches, used by the embeddings, the perplexity and the judge
 * (src/judge.c), and the labelled-TSV reader behind es_validate_tsv.
 */
#ifndef ES_SCORERS_H
#define ES_SCORERS_H

#include "emosteer.h"

#include <stddef.h>
#include <stdint.h>

/* One run of tokens of one sequence of the context. */
typedef struct es_tf_seg {
    const int32_t *tok; /* [len] token ids (borrowed) */
    int len;            /* tokens; 0 = nothing to decode */
    int slot;           /* sequence id in the context; distinct among the segments of one call */
    int pos0;           /* position of tok[0]: at most es_kv_len(slot); later cached positions
                           of the slot are dropped (a rollback) */
    int logits_lo;      /* logits are wanted for the tokens [logits_lo, logits_hi) */
    int logits_hi;
} es_tf_seg;

/* Called with the logits (float[n_vocab], borrowed until the next decode) of token k of
 * segment `seg`, in order of the segments and tokens. A non-OK return stops the run and
 * is returned. */
typedef es_status (*es_tf_logits_fn)(void *user, int seg, int k, const float *logits);

/* Decodes the segments in order, several per es_decode batch (at most the context's
 * n_batch tokens and max_logit_rows tokens with logits per batch; a segment longer
 * than that is split across batches), calling fn for every wanted logits row (fn may
 * be NULL when no logits are wanted). Validates slots, positions and lengths against
 * the context (ES_ERR_RANGE naming the segment). */
es_status es_tf_decode(es_context *ctx, const es_tf_seg *segs, int n_segs, int max_logit_rows,
                       es_tf_logits_fn fn, void *user);

/* A reasonable max_logit_rows for a context: its n_batch, capped so that the logits
 * of one batch stay under about 128 MiB (at least 8 rows). */
int es_tf_default_logit_rows(const es_context *ctx);


/* The length of the longest prefix of s[0..len) that does not end inside a UTF-8
 * character (a trailing lead byte without all its continuation bytes is dropped). */
size_t es_utf8_complete_prefix(const char *s, size_t len);

/* Parses labelled text: lines "label<TAB>text" (labels as es_emotion_parse), '#'
 * comment lines and blank lines skipped, CR before LF ignored. `name` is used in
 * messages. At most max_per_class sentences of each label are kept (0 = all), in file
 * order. */
es_status es_labelled_parse(const char *data, size_t len, const char *name, int max_per_class,
                            es_labelled *out);

#endif /* ES_SCORERS_H */
