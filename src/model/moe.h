/*
 * moe.h — internal: the mixture-of-experts FFN of one layer (moe.c), which forward.c
 * runs in place of the gated MLP when the model has experts (cfg.n_expert > 0):
 * Qwen3-MoE, and Mixtral-style files of the llama family.
 */
#ifndef ES_MOE_H
#define ES_MOE_H

#include "context.h"

/* rs.out[t] = Σ_j w[t][j] · down_e(silu(gate_e(h)) · up_e(h)), e = sel[t][j], for the
 * n_tok rows h = rs.xb of layer il: the router's softmax over every expert, its top
 * n_expert_used, their probabilities renormalised to sum 1 (rs.moe_sel, rs.moe_w keep
 * the routing of this layer until the next MoE layer runs). */
void es_moe_ffn(es_context *ctx, int il, int n_tok);

#endif /* ES_MOE_H */
