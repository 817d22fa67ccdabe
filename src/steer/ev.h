/*
 * ev.h — emotion-vector files: the formats read and written by es_ev_set_load,
 * es_ev_set_save and es_ev_set_export_control_vector (public API in emosteer.h).
 *
 * Layer numbering everywhere in emosteer: 0-based decoder block il, as passed to the
 * hook callbacks. At ES_HOOK_BLOCK_OUT, layer il is the residual stream after block il.
 *
 * 1. emosteer GGUF (written by es_ev_set_save; GGUF v3, 32-byte alignment)
 *    keys:
 *      general.architecture       string  "controlvector"
 *      controlvector.model_hint   string  emosteer.source_model ("" if unknown)
 *      controlvector.layer_count  u32     number of direction.N tensors (0 if none)
 *      emosteer.format_version    u32     1
 *      emosteer.tensors           string  tensor layout: "ev" or "direction" (below)
 *      emosteer.emotions          string[] emotion names, in set order (>= 1)
 *      emosteer.hook              string  "attn_out" | "mlp_out" | "block_out"
 *      emosteer.n_embd            u32     vector width
 *      emosteer.layer_count       u32     one past the highest layer of any emotion
 *      emosteer.method, emosteer.source_model, emosteer.query_set,
 *      emosteer.token_policy, emosteer.note      string (may be "")
 *      emosteer.n_samples         u32     0 = unknown
 *      emosteer.act_norm          f32[emosteer.layer_count]  0 = unknown
 *      emosteer.default_layers    i32[n]  optional: recommended steering layers, strictly
 *                                 increasing, each < emosteer.layer_count, n <= layer_count
 *    tensors, layout "direction" — chosen when the set has exactly one emotion, hook
 *    block_out and no layer-0 vector, so that llama.cpp's --control-vector reads the
 *    file (llama.cpp rejects a file holding any tensor not named direction.N, N >= 1):
 *      direction.<N>              F32 [n_embd]   the emotion's vector at layer N
 *    layout "ev" — every other set:
 *      ev.<emotion>.<layer>       F32 [n_embd]   one per (emotion, present layer)
 *    Load requires every listed emotion to have >= 1 tensor, no ev.* tensor of an
 *    unlisted emotion, F32 (or F16) 1-D tensors of width n_embd, finite values,
 *    layers < min(emosteer.layer_count, ES_EV_MAX_LAYER); other tensors are ignored.
 *    A file without emosteer.tensors has layout "ev".
 *
 * 2. llama.cpp control vector (read; written by es_ev_set_export_control_vector)
 *    tensors direction.N (N = 1, 2, ...), F32 [n_embd]. llama.cpp adds direction.N
 *    to the output of its layer N — 0-based block N — and has no vector for block 0
 *    (direction.0 is an error there and here). So direction.N <-> (block_out, N).
 *    Other tensors are ignored. emosteer's export adds the keys
 *    emosteer.cv_emotion (string), emosteer.cv_scale (f32), emosteer.cv_hook (string:
 *    the hook the vectors were measured at) and emosteer.note (string).
 *
 * 3. The seed paper's JSON (Dong et al. 2025, read only)
 *    {"0": [[f, f, ...]], "1": [[...]], ..., "L-1": [[...]]}: keys are decimal layer
 *    numbers 0..L-1 with none missing; each value a list holding one list of numbers
 *    (a flat list of numbers is accepted too); every layer the same width. The
 *    vectors are added to the self-attention output, so the hook is attn_out.
 *    Each number is parsed as a double (jansson, strtod) and rounded to float; a
 *    value that is not finite as a float is an error naming layer and index.
 */
#ifndef ES_EV_H
#define ES_EV_H

#include "common.h"

/* Loads from a memory image (GGUF or JSON, detected as in es_ev_set_load). `data` is
 * only read during the call. `name` as in es_ev_set_load but NULL means "direction"
 * for nameless formats. */
es_status es_ev_set_load_memory(const void *data, size_t size, const char *name, es_ev_set **out);

/* True if `name` is a valid emotion name: 1..ES_EV_MAX_NAME chars of [A-Za-z0-9_-]. */
bool es_ev_name_valid(const char *name);

#endif /* ES_EV_H */
