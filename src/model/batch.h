/*
 * batch.h — internal: the checks es_decode makes on a batch before it runs (batch.c).
 */
#ifndef ES_BATCH_H
#define ES_BATCH_H

#include "context.h"

/* Checks batch b against ctx and prepares to run it: fills rs.pos, rs.seq (positions
 * and sequence ids, defaults filled in), rs.first_pos (per sequence, -1 if absent) and
 * rs.out_rows; *n_out gets the number of tokens that want logits, and ctx->logits is
 * grown to hold them (the last batch's logits are then no longer valid). On an error
 * (ES_ERR_INVALID_ARG, ES_ERR_RANGE or ES_ERR_NOMEM, with a message) only the scratch
 * in rs has changed: the KV cache and the last batch's logits are as they were. */
es_status es_batch_prepare(es_context *ctx, const es_batch *b, int *n_out);

#endif /* ES_BATCH_H */
