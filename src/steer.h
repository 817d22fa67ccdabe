/*
 * steer.h — internal interface between the forward pass and steering.
 *
 * A context holds at most one es_steer_state (ctx->steer, NULL = no steering).
 * The forward pass calls es_steer_apply at every hook point, before the user hook;
 * es_context_free calls es_steer_state_free. The public setters in emosteer.h
 * (es_context_set_steering, es_context_set_prompt_len) create the state on first use.
 *
 * When a steering set is attached it is compiled: for each (hook, layer, position
 * policy) the items there are summed into one vector sum_k alpha_k * v_k. Sequences
 * given the same set in one call share the compiled vectors.
 */
#ifndef ES_STEER_H
#define ES_STEER_H

#include "emosteer.h"

struct es_steer_state; /* per-context steering: one steering set per sequence */

/* Creates an empty state for n_seq sequences of a model with n_layer blocks of width
 * n_embd. *out is owned by the caller (es_steer_state_free). */
es_status es_steer_state_create(int n_seq, int n_layer, int n_embd, struct es_steer_state **out);

/* Frees the state and everything it owns. NULL is a no-op. */
void es_steer_state_free(struct es_steer_state *st);

/* Attaches a compiled copy of `set` to sequence seq (all sequences when seq < 0);
 * set == NULL removes it. Validates width, layers and finiteness as
 * es_context_set_steering documents. On failure the state is unchanged. */
es_status es_steer_state_attach(struct es_steer_state *st, int seq, const es_steer_set *set);

/* As es_context_set_prompt_len. */
es_status es_steer_state_set_prompt_len(struct es_steer_state *st, int seq, int n_prompt);

/* True if any sequence has steering at (hp, layer). */
bool es_steer_active(const struct es_steer_state *st, es_hook_point hp, int layer);

/* Adds the steering of every sequence present in `batch` to x, in place.
 * x: [n_tokens][n_embd] activations at (hp, layer); batch has pos and seq filled
 * (seq ids outside the state's range are skipped). st may be NULL (no steering).
 * Never fails: everything was validated when the steering was attached. */
void es_steer_apply(struct es_steer_state *st, es_hook_point hp, int layer, float *x, int n_tokens,
                    int n_embd, const es_batch *batch);

#endif /* ES_STEER_H */
