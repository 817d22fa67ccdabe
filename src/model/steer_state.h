/*
 * steer_state.h — the per-context steering state the forward pass applies.
 *
 * A context holds at most one es_steer_state (ctx->steer, NULL = no steering).
 * The forward pass calls es_steer_apply at every hook point, before the user hook;
 * es_context_free calls es_steer_state_free. The public setters in emosteer.h
 * (es_context_set_steering in steer/steer.c, es_context_set_prompt_len here) create
 * the state on first use.
 *
 * Sequences given the same set in one call share the compiled vectors.
 */
#ifndef ES_STEER_STATE_H
#define ES_STEER_STATE_H

#include "emosteer.h"

struct es_steer_state; /* per-context steering: one compiled set per sequence */

/* A compiled steering set (built by the steer layer, steer/steer.c): what one or more
 * sequences add at each (hook, layer, position policy). Shared by reference count. */
typedef struct es_steer_compiled {
    int refs; /* sequences using it */
    bool preserve_norm;
    float *vec[ES_HOOK_COUNT][ES_STEER_POS_COUNT]; /* [n_layer][n_embd] combined, or NULL */
    uint8_t *mask[ES_HOOK_COUNT]; /* [n_layer] bit p: vec[hp][p] has a row at this layer */
} es_steer_compiled;

/* Frees a compiled set that no sequence uses (refs == 0). NULL is a no-op. */
void es_steer_compiled_free(es_steer_compiled *c);

/* Creates an empty state for n_seq sequences of a model with n_layer blocks of width
 * n_embd. *out is owned by the caller (es_steer_state_free). */
es_status es_steer_state_create(int n_seq, int n_layer, int n_embd, struct es_steer_state **out);

/* Frees the state and everything it owns. NULL is a no-op. */
void es_steer_state_free(struct es_steer_state *st);

/* Attaches the compiled set `c` (made for this state's n_layer and n_embd, refs 0) to
 * sequence seq (all sequences when seq < 0); c == NULL removes the steering. The state
 * takes c over, also on failure. */
es_status es_steer_state_attach(struct es_steer_state *st, int seq, es_steer_compiled *c);

/* The shape the state was created for. */
int es_steer_state_n_seq(const struct es_steer_state *st);
int es_steer_state_n_layer(const struct es_steer_state *st);
int es_steer_state_n_embd(const struct es_steer_state *st);

/* The context's steering state, created on first use (*out borrowed from ctx). */
es_status es_context_steer_state(es_context *ctx, struct es_steer_state **out);

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

#endif /* ES_STEER_STATE_H */
