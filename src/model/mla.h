/*
 * mla.h — internal: the projections of multi-head latent attention (MiniCPM3, mla.c),
 * which forward.c runs in place of q, k, v = h·Wq,k,vᵀ when cfg.kv_lora_rank > 0.
 */
#ifndef ES_MLA_H
#define ES_MLA_H

#include "context.h"

/* rs.q, rs.k, rs.v of layer il from rs.xb (the normed input) for n_tok rows, not yet
 * RoPE'd: each Q/K head is laid out [rope part (n_rot) | non-rope part], so that
 * forward.c's RoPE of the first n_rot dims and attention apply unchanged (a dot
 * product does not depend on the order of the dims, as long as q and k share it). */
void es_mla_qkv(es_context *ctx, int il, int n_tok);

#endif /* ES_MLA_H */
