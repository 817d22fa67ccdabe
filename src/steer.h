/*
 * steer.h — internal interface between the forward pass and steering.
 *
 * A context holds at most one es_steer_state (ctx->steer, NULL = no steering).
 * The forward pass calls es_steer_apply at every hook point, before the user hook;
 * es_context_free calls es_steer_state_free. The state is created and changed only
 * through the public setters in emosteer.h (es_context_set_steering, ...).
 */
#ifndef ES_STEER_H
#define ES_STEER_H

#include "emosteer.h"

struct es_steer_state; /* per-context steering: one steering set per sequence */

/* Frees the state and everything it owns. NULL is a no-op. */
void es_steer_state_free(struct es_steer_state *st);

/* Adds the steering of every sequence present in `batch` to x, in place.
 * x: [n_tokens][n_embd] activations at (hp, layer); batch has pos and seq filled.
 * st may be NULL (no steering). Never fails: everything was validated when the
 * steering was attached. */
void es_steer_apply(struct es_steer_state *st, es_hook_point hp, int layer, float *x, int n_tokens,
                    int n_embd, const es_batch *batch);

#endif /* ES_STEER_H */
