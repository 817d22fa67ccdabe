/*
 * steer.c — steering sets applied in the forward pass (work in progress).
 */
#include "steer.h"

#include "common.h"

#include <stdlib.h>

struct es_steer_state {
    int n_seq; /* sequences with a slot */
};

void es_steer_state_free(struct es_steer_state *st) {
    free(st);
}

void es_steer_apply(struct es_steer_state *st, es_hook_point hp, int layer, float *x, int n_tokens,
                    int n_embd, const es_batch *batch) {
    (void)hp;
    (void)layer;
    (void)x;
    (void)n_tokens;
    (void)n_embd;
    (void)batch;
    if (st == NULL) return;
}
