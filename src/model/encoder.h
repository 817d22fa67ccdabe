/*
 * encoder.h — internal: encoder families (GGUF architecture "bert": BERT, RoBERTa,
 * XLM-RoBERTa as llama.cpp's converter writes them), their weights and the forward
 * pass over a padded batch of sequences (encoder.c). Shapes are written fastest
 * dimension last, as C arrays: x[N][n_embd] is N rows of n_embd floats.
 *
 *   x = LayerNorm(token_embd[id] + position_embd[p] + token_types[type])     -> emb
 *   for each layer l:
 *       a  = softmax(q·kᵀ / √head_dim, keys of the same sequence only) · v   per head
 *       x1 = LayerNorm(x + a·Woᵀ + bo)                   (attn_output_norm)  -> attn_ln[l]
 *       x  = LayerNorm(x1 + gelu(x1·Wupᵀ + b_up)·Wdownᵀ + b_down)  (layer_output_norm) -> hidden[l]
 *   pooled = tanh(cls·x[0] + cls.bias)    (without cls.weight: pooled = x[0])
 *   logits = cls.output·pooled + cls.output.bias
 *
 * GELU is the exact (erf) one of Hugging Face's `gelu`. Position p of a token is its
 * index among the real (mask = 1) tokens of its row, so each row of a padded batch
 * gives what it gives alone; RoBERTa's padding_idx + 1 offset rows are removed by the
 * converter, so BERT and RoBERTa both start at row 0.
 */
#ifndef ES_ENCODER_H
#define ES_ENCODER_H

#include "model.h"
#include "threadpool.h"

typedef struct es_encoder_layer {
    es_matrix wq, wk, wv;               /* [n_embd][n_embd] */
    const float *bq, *bk, *bv;          /* [n_embd] */
    es_matrix wo;                       /* [n_embd][n_embd] */
    const float *bo;                    /* [n_embd] */
    const float *attn_ln_w, *attn_ln_b; /* attn_output_norm [n_embd] */
    es_matrix w_up;                     /* [n_ff][n_embd] */
    const float *b_up;                  /* [n_ff] */
    es_matrix w_down;                   /* [n_embd][n_ff] */
    const float *b_down;                /* [n_embd] */
    const float *out_ln_w, *out_ln_b;   /* layer_output_norm [n_embd] */
} es_encoder_layer;

typedef struct es_encoder_weights {
    es_matrix token_embd;               /* [n_vocab][n_embd] rows read one at a time */
    es_matrix pos_embd;                 /* [n_pos][n_embd] */
    es_matrix type_embd;                /* [n_types][n_embd], n_out 0 if absent */
    const float *embd_ln_w, *embd_ln_b; /* token_embd_norm [n_embd] */
    es_encoder_layer *layers;           /* [n_layer] (owned) */
    es_matrix cls;                      /* pooler dense [n_embd][n_embd], data NULL if absent */
    const float *cls_b;                 /* [n_embd] or NULL */
    es_matrix cls_out;                  /* [n_labels][n_embd], data NULL if the model has no head */
    const float *cls_out_b;             /* [n_labels] or NULL */
    int n_pos;                          /* rows of position_embd: the longest sequence */
    int n_types;   /* rows of token_types (0 if absent: every type adds nothing) */
    int n_labels;  /* rows of cls.output (0 without a head) */
    char **labels; /* [n_labels] names (owned): bert.classifier.output_labels, else "LABEL_i" */
    float ln_eps;  /* LayerNorm epsilon (bert.attention.layer_norm_epsilon) */
} es_encoder_weights;

/* Binds the encoder weights of m (whose arch is an encoder) into m->enc, checking every
 * name, shape and type. Called by es_model_open. */
es_status es_encoder_bind(es_model *m);
void es_encoder_weights_free(es_encoder_weights *w);

/* What one forward pass writes: es_encoder_activations of emosteer.h. */
typedef es_encoder_activations es_encoder_out;

/* Scratch of the forward pass, grown as needed; owned by the caller (zero-initialise,
 * free with es_encoder_scratch_free). Not shared between threads. */
typedef struct es_encoder_scratch {
    void *mem;   /* one aligned block */
    size_t size; /* its bytes */
} es_encoder_scratch;

void es_encoder_scratch_free(es_encoder_scratch *s);

/* Runs the encoder on n_seq rows of T tokens (tokens[s][t]); types (NULL: all 0) and
 * mask (NULL: all 1; a 0 marks padding, anywhere in the row) have the same shape. A
 * row needs at least one real token (the head reads its first one) and at most n_pos.
 * Token ids and types are checked. */
es_status es_encoder_forward(const es_model *m, es_threadpool *tp, es_encoder_scratch *scratch,
                             const int32_t *tokens, const int32_t *types, const int32_t *mask,
                             int n_seq, int T, const es_encoder_out *out);

#endif /* ES_ENCODER_H */
