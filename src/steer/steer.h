/*
 * steer.h — internal interface of the steer layer's sets (steer.c) to the model
 * layer's per-context steering state (model/steer_state.h).
 */
#ifndef ES_STEER_H
#define ES_STEER_H

#include "steer_state.h"

/* Compiles `set` for the state's model shape and attaches it to sequence seq (all
 * sequences when seq < 0); set == NULL removes the steering. Validates width, layers
 * and finiteness as es_context_set_steering documents. On failure the state is
 * unchanged. */
es_status es_steer_state_attach_set(struct es_steer_state *st, int seq, const es_steer_set *set);

#endif /* ES_STEER_H */
