/*
 * tokenizer.c — the vocabulary: loading from GGUF metadata, lookups, splitting text
 * at special tokens, es_tokenize, pieces, detokenizing and the streaming
 * detokenizer. The merge algorithms live in tokenizer_spm.c and tokenizer_bpe.c.
 *
 * Special tokens. Control, user-defined and unknown-type tokens are matched
 * literally in the text, leftmost-longest (as Hugging Face's added-token splitter
 * does). Without parse_special only user-defined tokens are matched. Each stretch
 * of text between matches is a fragment tokenized on its own; for SentencePiece
 * with a dummy prefix every fragment that starts the text or follows a special
 * token gets one leading space (the "legacy" Llama behaviour the reference ids use).
 */
#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* UTF-8 and hashing                                                         */
/* ------------------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h ^ (h >> 15);
}

static uint32_t pow2_slots(size_t n) {
    uint32_t slots = 16;
    while (slots < 2 * n && slots < (1u << 31))
        slots <<= 1;
    return slots;
}

static es_status strmap_build(es_vocab *v) {
    uint32_t slots = pow2_slots((size_t)v->n_tokens);
    v->map.slots = malloc((size_t)slots * sizeof(int32_t));
    if (!v->map.slots) return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for the token map");
    memset(v->map.slots, 0xff, (size_t)slots * sizeof(int32_t));
    v->map.mask = slots - 1;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        const es_vocab_token *t = &v->tokens[id];
        const char *s = v->text + t->text_off;
        if (t->text_len == 0) continue;
        uint32_t i = hash_bytes(s, t->text_len) & v->map.mask;
        for (;;) {
            int32_t other = v->map.slots[i];
            if (other < 0) {
                v->map.slots[i] = id;
                break;
            }
            const es_vocab_token *o = &v->tokens[other];
            if (o->text_len == t->text_len && !memcmp(v->text + o->text_off, s, t->text_len))
                break; /* duplicate text: the first id keeps it */
            i = (i + 1) & v->map.mask;
        }
    }
    return ES_OK;
}

int32_t es_vocab_lookup(const es_vocab *v, const char *s, size_t n) {
    if (n == 0 || n > UINT32_MAX) return -1;
    uint32_t i = hash_bytes(s, n) & v->map.mask;
    for (;;) {
        int32_t id = v->map.slots[i];
        if (id < 0) return -1;
        const es_vocab_token *t = &v->tokens[id];
        if (t->text_len == n && !memcmp(v->text + t->text_off, s, n)) return id;
        i = (i + 1) & v->map.mask;
    }
}

es_status es_tokbuf_push(es_tokbuf *b, int32_t id) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        size_t bytes;
        if (!es_mul_size(cap, sizeof(int32_t), &bytes))
            return es_error(ES_ERR_NOMEM, "tokenizer: token list of %zu ids overflows", cap);
        int32_t *ids = realloc(b->ids, bytes);
        if (!ids) return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for %zu token ids", cap);
        b->ids = ids;
        b->cap = cap;
    }
    b->ids[b->n++] = id;
    return ES_OK;
}

/* ------------------------------------------------------------------------- */
/* Loading                                                                   */
/* ------------------------------------------------------------------------- */

#define KEY_PREFIX "tokenizer.ggml."

/* An optional token id key: absent keeps *id; a value outside [0, n) means none. */
static es_status read_id(const es_gguf *g, const char *key, int32_t n_tokens, int32_t *id) {
    int64_t val;
    es_status st = es_gguf_get_i64(g, key, &val);
    if (st == ES_ERR_NOT_FOUND) return ES_OK;
    if (st != ES_OK) return st;
    /* -1 (or its u32 form) is how converters write "none"; any other value outside the
     * vocabulary is a broken file, not a token to drop silently */
    if (val == -1 || val == (int64_t)UINT32_MAX) {
        *id = -1;
        return ES_OK;
    }
    if (val < 0 || val >= n_tokens)
        return es_error(ES_ERR_FORMAT,
                        "tokenizer: %s = %lld is outside the vocabulary of %d tokens", key,
                        (long long)val, (int)n_tokens);
    *id = (int32_t)val;
    return ES_OK;
}

static es_status read_bool(const es_gguf *g, const char *key, bool *out) {
    es_status st = es_gguf_get_bool(g, key, out);
    return st == ES_ERR_NOT_FOUND ? ES_OK : st;
}

/* Copies the token texts into one arena and reads scores and types. */
static es_status load_tokens(es_vocab *v, const es_gguf *g) {
    const char *key = KEY_PREFIX "tokens";
    es_gguf_vtype et;
    uint64_t n;
    es_status st = es_gguf_get_arr(g, key, &et, &n);
    if (st == ES_ERR_NOT_FOUND) return es_error(ES_ERR_FORMAT, "tokenizer: %s is missing", key);
    if (st != ES_OK) return st;
    if (et != ES_GGUF_STRING)
        return es_error(ES_ERR_FORMAT, "tokenizer: %s is an array of type %d, not strings", key,
                        (int)et);
    if (n == 0 || n >= (uint64_t)INT32_MAX)
        return es_error(ES_ERR_FORMAT, "tokenizer: %s has %llu entries (need 1 .. %d)", key,
                        (unsigned long long)n, INT32_MAX - 1);
    v->n_tokens = (int32_t)n;
    v->tokens = es_calloc((size_t)n, sizeof(es_vocab_token));
    if (!v->tokens) return ES_ERR_NOMEM;

    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        es_gguf_str s = es_gguf_arr_str(g, key, i);
        if (!s.ptr && s.len)
            return es_error(ES_ERR_FORMAT, "tokenizer: token %llu unreadable",
                            (unsigned long long)i);
        if (s.len >= UINT32_MAX || (total += s.len + 1) >= UINT32_MAX)
            return es_error(ES_ERR_FORMAT, "tokenizer: token texts exceed 4 GiB at token %llu",
                            (unsigned long long)i);
    }
    v->text = malloc((size_t)total);
    v->pieces = malloc((size_t)total);
    if (!v->text || !v->pieces)
        return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for %llu bytes of token text",
                        (unsigned long long)total);
    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        es_gguf_str s = es_gguf_arr_str(g, key, i);
        if (s.len) memcpy(v->text + off, s.ptr, (size_t)s.len);
        v->text[off + s.len] = '\0';
        v->tokens[i].text_off = off;
        v->tokens[i].text_len = (uint32_t)s.len;
        v->tokens[i].type = ES_TOKTYPE_NORMAL;
        off += (uint32_t)s.len + 1;
    }

    float *scores = NULL;
    int32_t *types = NULL;
    if (es_gguf_find_key(g, KEY_PREFIX "scores") >= 0) {
        scores = malloc((size_t)n * sizeof(float));
        if (!scores) return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for scores");
        st = es_gguf_arr_to_f32(g, KEY_PREFIX "scores", scores, n);
        if (st != ES_OK) {
            free(scores);
            return es_error_prefix(st, "tokenizer: scores");
        }
        for (uint64_t i = 0; i < n; i++)
            v->tokens[i].score = isnan(scores[i]) ? -INFINITY : scores[i];
        free(scores);
    }
    if (es_gguf_find_key(g, KEY_PREFIX "token_type") >= 0) {
        types = malloc((size_t)n * sizeof(int32_t));
        if (!types) return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for token types");
        st = es_gguf_arr_to_i32(g, KEY_PREFIX "token_type", types, n);
        if (st != ES_OK) {
            free(types);
            return es_error_prefix(st, "tokenizer: token_type");
        }
        for (uint64_t i = 0; i < n; i++) {
            if (types[i] < ES_TOKTYPE_UNDEFINED || types[i] > ES_TOKTYPE_BYTE) {
                int32_t bad = types[i];
                free(types);
                return es_error(ES_ERR_FORMAT, "tokenizer: token %llu has type %d (valid: 0..6)",
                                (unsigned long long)i, bad);
            }
            v->tokens[i].type =
                types[i] == ES_TOKTYPE_UNDEFINED ? ES_TOKTYPE_NORMAL : (uint8_t)types[i];
        }
        free(types);
    }
    return ES_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xNN>" text, or -1. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

/* Fills the rendered bytes of every token (what es_token_to_piece gives). */
static void build_pieces(es_vocab *v) {
    uint32_t off = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        es_vocab_token *t = &v->tokens[id];
        const char *s = v->text + t->text_off;
        char *dst = v->pieces + off;
        size_t n = 0;
        switch (t->type) {
        case ES_TOKTYPE_UNUSED: break;
        case ES_TOKTYPE_CONTROL:
        case ES_TOKTYPE_USER_DEFINED:
        case ES_TOKTYPE_UNKNOWN:
            memcpy(dst, s, t->text_len);
            n = t->text_len;
            break;
        default: /* normal; BPE byte tokens decode like normal ones */
            if (t->type == ES_TOKTYPE_BYTE && v->kind == ES_VOCAB_SPM) {
                int b = parse_byte_token(s, t->text_len);
                if (b >= 0) {
                    dst[0] = (char)b;
                    n = 1;
                } else {
                    memcpy(dst, s, t->text_len);
                    n = t->text_len;
                }
            } else if (v->kind == ES_VOCAB_BPE) {
                n = es_bpe_decode_text(s, t->text_len, dst);
            } else {
                for (size_t i = 0; i < t->text_len;) {
                    if (i + 3 <= t->text_len && !memcmp(s + i, "\xE2\x96\x81", 3)) {
                        dst[n++] = ' ';
                        i += 3;
                    } else {
                        dst[n++] = s[i++];
                    }
                }
            }
        }
        t->piece_off = off;
        t->piece_len = (uint32_t)n;
        off += (uint32_t)n;
    }
}

/* Specials are sorted by (first byte, longest first, id) through a packed key, so
 * no comparator needs the vocab. */
typedef struct special_key {
    uint64_t key; /* first byte << 32 | (UINT32_MAX - text length) */
    int32_t id;
} special_key;

static int special_key_cmp(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static es_status build_specials(es_vocab *v) {
    int32_t n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if ((v->tokens[id].attr & ES_TOKATTR_SPECIAL) && v->tokens[id].text_len > 0) n++;
    special_key *keys = es_calloc((size_t)n + 1, sizeof(special_key));
    v->special = es_calloc((size_t)n + 1, sizeof(int32_t));
    if (!keys || !v->special) {
        free(keys);
        return ES_ERR_NOMEM;
    }
    int32_t k = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        const es_vocab_token *t = &v->tokens[id];
        if (!(t->attr & ES_TOKATTR_SPECIAL) || t->text_len == 0) continue;
        uint64_t first = (unsigned char)v->text[t->text_off];
        keys[k].key = (first << 32) | (uint64_t)(UINT32_MAX - t->text_len); /* longest first */
        keys[k].id = id;
        k++;
    }
    qsort(keys, (size_t)n, sizeof(special_key), special_key_cmp);
    for (int b = 0; b <= 256; b++)
        v->special_start[b] = n;
    for (int32_t i = n - 1; i >= 0; i--) {
        v->special[i] = keys[i].id;
        v->special_start[keys[i].key >> 32] = i;
    }
    for (int b = 255; b >= 0; b--) /* empty groups start where the next one does */
        if (v->special_start[b] > v->special_start[b + 1])
            v->special_start[b] = v->special_start[b + 1];
    v->n_special = n;
    free(keys);
    return ES_OK;
}

/* Texts that end a turn in the chat formats we know, in the order that picks eot. */
static const char *const eot_names[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "_<EOT>",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
};
static const char *const eom_names[] = {"<|eom_id|>"};

static void mark_eog(es_vocab *v, int32_t id) {
    if (id < 0) return;
    es_vocab_token *t = &v->tokens[id];
    t->attr |= ES_TOKATTR_EOG;
    /* a turn-ending token is a control token whatever its declared type: matched
     * only with parse_special, hidden when specials are not rendered */
    t->attr = (uint8_t)((t->attr | ES_TOKATTR_CONTROL | ES_TOKATTR_SPECIAL) &
                        ~(ES_TOKATTR_MERGEABLE | ES_TOKATTR_USER));
}

static void set_attrs(es_vocab *v, const es_gguf *g, bool has_eot, bool has_eom) {
    for (int32_t id = 0; id < v->n_tokens; id++) {
        es_vocab_token *t = &v->tokens[id];
        switch (t->type) {
        case ES_TOKTYPE_CONTROL: t->attr = ES_TOKATTR_CONTROL | ES_TOKATTR_SPECIAL; break;
        case ES_TOKTYPE_USER_DEFINED:
            t->attr = ES_TOKATTR_SPECIAL | ES_TOKATTR_USER | ES_TOKATTR_MERGEABLE;
            break;
        case ES_TOKTYPE_UNKNOWN: t->attr = ES_TOKATTR_SPECIAL; break;
        case ES_TOKTYPE_NORMAL: t->attr = ES_TOKATTR_MERGEABLE; break;
        default: t->attr = 0;
        }
    }
    for (size_t i = 0; i < ES_ARRAY_LEN(eot_names); i++) {
        int32_t id = es_vocab_lookup(v, eot_names[i], strlen(eot_names[i]));
        if (id < 0) continue;
        if (!has_eot && v->eot < 0) v->eot = id;
        mark_eog(v, id);
    }
    for (size_t i = 0; i < ES_ARRAY_LEN(eom_names); i++) {
        int32_t id = es_vocab_lookup(v, eom_names[i], strlen(eom_names[i]));
        if (id < 0) continue;
        if (!has_eom && v->eom < 0) v->eom = id;
        mark_eog(v, id);
    }
    if (v->eos >= 0) v->tokens[v->eos].attr |= ES_TOKATTR_EOG;
    if (v->eot >= 0) v->tokens[v->eot].attr |= ES_TOKATTR_EOG;
    if (v->eom >= 0) v->tokens[v->eom].attr |= ES_TOKATTR_EOG;

    /* Phi-3 declares its added tokens with rstrip: the whitespace after them is
     * swallowed, except after <unk>, <s> and <|endoftext|>. */
    char *arch = es_gguf_get_str_dup(g, "general.architecture");
    char *name = es_gguf_get_str_dup(g, "general.name");
    bool phi3 = arch && !strcmp(arch, "phi3");
    if (name) {
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        if (strstr(name, "phi-3") || strstr(name, "phi3")) phi3 = true;
    }
    free(arch);
    free(name);
    if (phi3) {
        for (int32_t id = 0; id < v->n_tokens; id++)
            if (v->tokens[id].attr & ES_TOKATTR_SPECIAL) v->tokens[id].attr |= ES_TOKATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < ES_ARRAY_LEN(keep); i++) {
            int32_t id = es_vocab_lookup(v, keep[i], strlen(keep[i]));
            if (id >= 0) v->tokens[id].attr &= (uint8_t)~ES_TOKATTR_RSTRIP;
        }
    }
}

void es_vocab_free(es_vocab *v) {
    if (!v) return;
    es_bpe_free(v);
    es_spm_free(v);
    free(v->tokens);
    free(v->text);
    free(v->pieces);
    free(v->map.slots);
    free(v->special);
    free(v);
}

es_status es_vocab_from_gguf(const es_gguf *g, es_vocab **out) {
    if (!g || !out) return es_error(ES_ERR_INVALID_ARG, "es_vocab_from_gguf: NULL argument");
    char *model = es_gguf_get_str_dup(g, KEY_PREFIX "model");
    if (!model) {
        if (es_gguf_find_key(g, KEY_PREFIX "model") >= 0)
            return es_error(ES_ERR_FORMAT, "tokenizer: %smodel is not a string", KEY_PREFIX);
        return es_error(ES_ERR_NOT_FOUND, "tokenizer: no tokenizer metadata (%smodel is missing)",
                        KEY_PREFIX);
    }
    es_vocab_kind kind;
    if (!strcmp(model, "llama")) {
        kind = ES_VOCAB_SPM;
    } else if (!strcmp(model, "gpt2")) {
        kind = ES_VOCAB_BPE;
    } else if (!strcmp(model, "bert")) {
        kind = ES_VOCAB_WPM;
    } else {
        es_status st = es_error(
            ES_ERR_UNSUPPORTED,
            "tokenizer: tokenizer model '%.64s' is not supported (supported: llama, gpt2, bert)",
            model);
        free(model);
        return st;
    }
    free(model);

    es_vocab *v = es_calloc(1, sizeof *v);
    if (!v) return ES_ERR_NOMEM;
    v->kind = kind;
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = v->cls = v->sep = -1;
    for (int b = 0; b < 256; b++)
        v->byte_tok[b] = v->bpe_byte_tok[b] = -1;

    es_status st = load_tokens(v, g);
    if (st == ES_OK) st = strmap_build(v);
    char *pre = NULL;
    if (st == ES_OK && kind == ES_VOCAB_SPM) {
        v->bos = 1 < v->n_tokens ? 1 : -1;
        v->eos = 2 < v->n_tokens ? 2 : -1;
        v->unk = 0;
        v->add_bos = true;
        v->add_space_prefix = true;
        for (int32_t id = 0; id < v->n_tokens; id++) {
            const es_vocab_token *t = &v->tokens[id];
            if (t->type != ES_TOKTYPE_BYTE) continue;
            int b = parse_byte_token(v->text + t->text_off, t->text_len);
            if (b >= 0 && v->byte_tok[b] < 0) v->byte_tok[b] = id;
        }
    } else if (st == ES_OK && kind == ES_VOCAB_WPM) {
        st = es_wpm_init(v, g);
    } else if (st == ES_OK) {
        pre = es_gguf_get_str_dup(g, KEY_PREFIX "pre");
        st = es_bpe_init(v, g, pre ? pre : "default");
        free(pre);
    }
    bool has_eot = false, has_eom = false;
    if (st == ES_OK) {
        has_eot = es_gguf_find_key(g, KEY_PREFIX "eot_token_id") >= 0;
        has_eom = es_gguf_find_key(g, KEY_PREFIX "eom_token_id") >= 0;
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "bos_token_id", v->n_tokens, &v->bos);
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "eos_token_id", v->n_tokens, &v->eos);
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "eot_token_id", v->n_tokens, &v->eot);
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "eom_token_id", v->n_tokens, &v->eom);
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "unknown_token_id", v->n_tokens, &v->unk);
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "padding_token_id", v->n_tokens, &v->pad);
        if (st == ES_OK) st = read_bool(g, KEY_PREFIX "add_bos_token", &v->add_bos);
        if (st == ES_OK) st = read_bool(g, KEY_PREFIX "add_eos_token", &v->add_eos);
        if (st == ES_OK) st = read_bool(g, KEY_PREFIX "add_space_prefix", &v->add_space_prefix);
        if (kind == ES_VOCAB_BPE) v->add_space_prefix = false; /* not a byte-level BPE notion */
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "cls_token_id", v->n_tokens, &v->cls);
        if (st == ES_OK) st = read_id(g, KEY_PREFIX "seperator_token_id", v->n_tokens, &v->sep);
        if (v->cls < 0) v->cls = v->bos;
        if (v->sep < 0) v->sep = v->eos;
        if (kind == ES_VOCAB_WPM) {
            v->add_space_prefix = false; /* words carry their "▁" in the vocab */
            if (v->bos < 0) v->bos = v->cls;
        }
    }
    if (st == ES_OK) {
        set_attrs(v, g, has_eot, has_eom);
        build_pieces(v);
        st = build_specials(v);
    }
    if (st == ES_OK && kind == ES_VOCAB_SPM) st = es_spm_init(v);
    if (st != ES_OK) {
        es_vocab_free(v);
        return st;
    }
    *out = v;
    return ES_OK;
}

es_status es_vocab_load(const char *path, es_vocab **out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "es_vocab_load: NULL argument");
    es_gguf *g = NULL;
    es_status st = es_gguf_open(path, &g);
    if (st != ES_OK) return st;
    st = es_vocab_from_gguf(g, out);
    es_gguf_close(g);
    if (st != ES_OK) return es_error_prefix(st, "%s", path);
    return ES_OK;
}

/* ------------------------------------------------------------------------- */
/* Getters                                                                   */
/* ------------------------------------------------------------------------- */

static bool valid_id(const es_vocab *v, int32_t tok) {
    return v && tok >= 0 && tok < v->n_tokens;
}

int32_t es_vocab_n_tokens(const es_vocab *v) {
    return v ? v->n_tokens : 0;
}
int32_t es_vocab_bos(const es_vocab *v) {
    return v ? v->bos : -1;
}
int32_t es_vocab_eos(const es_vocab *v) {
    return v ? v->eos : -1;
}
int32_t es_vocab_eot(const es_vocab *v) {
    return v ? v->eot : -1;
}
int32_t es_vocab_unk(const es_vocab *v) {
    return v ? v->unk : -1;
}
bool es_vocab_add_bos(const es_vocab *v) {
    return v && v->add_bos && v->bos >= 0;
}
bool es_vocab_add_eos(const es_vocab *v) {
    return v && v->add_eos && v->eos >= 0;
}

bool es_vocab_is_eog(const es_vocab *v, int32_t tok) {
    return valid_id(v, tok) && (v->tokens[tok].attr & ES_TOKATTR_EOG);
}

bool es_vocab_is_control(const es_vocab *v, int32_t tok) {
    return valid_id(v, tok) && (v->tokens[tok].attr & ES_TOKATTR_CONTROL);
}

const char *es_vocab_token_text(const es_vocab *v, int32_t tok) {
    return valid_id(v, tok) ? v->text + v->tokens[tok].text_off : NULL;
}

int32_t es_vocab_find_token(const es_vocab *v, const char *text) {
    if (!v || !text) return -1;
    return es_vocab_lookup(v, text, strlen(text));
}

/* ------------------------------------------------------------------------- */
/* Tokenizing                                                                */
/* ------------------------------------------------------------------------- */

static bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The longest special token matching at text[pos..len), or -1. */
static int32_t match_special(const es_vocab *v, const char *text, size_t len, size_t pos,
                             bool parse_special) {
    unsigned char b = (unsigned char)text[pos];
    for (int32_t i = v->special_start[b]; i < v->special_start[b + 1]; i++) {
        int32_t id = v->special[i];
        const es_vocab_token *t = &v->tokens[id];
        if (!parse_special && !(t->attr & ES_TOKATTR_USER)) continue;
        if (t->text_len <= len - pos && !memcmp(text + pos, v->text + t->text_off, t->text_len))
            return id;
    }
    return -1;
}

static es_status tokenize_fragment(const es_vocab *v, const char *text, size_t len,
                                   bool after_special, es_tokbuf *out) {
    if (len == 0) return ES_OK;
    if (v->kind == ES_VOCAB_SPM)
        return es_spm_tokenize(v, text, len, v->add_space_prefix && after_special, out);
    if (v->kind == ES_VOCAB_WPM) return es_wpm_tokenize(v, text, len, out);
    return es_bpe_tokenize(v, text, len, out);
}

es_status es_tokenize(const es_vocab *v, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t *out, int32_t cap, int32_t *n_out) {
    if (!v || !n_out || (!text && len) || cap < 0 || (!out && cap > 0))
        return es_error(ES_ERR_INVALID_ARG, "es_tokenize: NULL or negative argument");
    es_tokbuf buf = {0};
    es_status st = ES_OK;
    if (add_special && v->add_bos && v->bos >= 0) st = es_tokbuf_push(&buf, v->bos);

    size_t frag = 0, pos = 0;
    bool after_special = true;
    while (st == ES_OK && pos < len) {
        int32_t id = v->n_special ? match_special(v, text, len, pos, parse_special) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        const es_vocab_token *t = &v->tokens[id];
        size_t end = pos;
        if (t->attr & ES_TOKATTR_LSTRIP)
            while (end > frag && is_ascii_space(text[end - 1]))
                end--;
        st = tokenize_fragment(v, text + frag, end - frag, after_special, &buf);
        if (st == ES_OK) st = es_tokbuf_push(&buf, id);
        after_special = true;
        pos += t->text_len;
        if (t->attr & ES_TOKATTR_RSTRIP)
            while (pos < len && is_ascii_space(text[pos]))
                pos++;
        frag = pos;
    }
    if (st == ES_OK && frag < len)
        st = tokenize_fragment(v, text + frag, len - frag, after_special, &buf);
    if (st == ES_OK && add_special && v->add_eos && v->eos >= 0) st = es_tokbuf_push(&buf, v->eos);
    if (st == ES_OK && buf.n > (size_t)INT32_MAX)
        st = es_error(ES_ERR_RANGE, "es_tokenize: %zu tokens exceed the int32 count", buf.n);
    if (st == ES_OK && buf.n > (size_t)cap) {
        *n_out = (int32_t)buf.n;
        st = es_error(ES_ERR_RANGE, "es_tokenize: %zu tokens do not fit in %d", buf.n, cap);
    } else if (st == ES_OK) {
        if (buf.n) memcpy(out, buf.ids, buf.n * sizeof(int32_t));
        *n_out = (int32_t)buf.n;
    }
    free(buf.ids);
    return st;
}

/* ------------------------------------------------------------------------- */
/* Pieces and detokenizing                                                   */
/* ------------------------------------------------------------------------- */

/* The rendered bytes of a token, or n = 0 when hidden. */
static const char *piece_of(const es_vocab *v, int32_t tok, bool render_special, size_t *n) {
    const es_vocab_token *t = &v->tokens[tok];
    if ((t->attr & ES_TOKATTR_CONTROL) && !render_special) {
        *n = 0;
        return v->pieces;
    }
    *n = t->piece_len;
    return v->pieces + t->piece_off;
}

int32_t es_token_to_piece(const es_vocab *v, int32_t tok, char *buf, int32_t cap,
                          bool render_special) {
    if (!valid_id(v, tok)) return 0;
    size_t n;
    const char *p = piece_of(v, tok, render_special, &n);
    if (n > (size_t)INT32_MAX) return 0;
    if (cap < 0 || (size_t)cap < n || (!buf && n)) return -(int32_t)n;
    if (n) memcpy(buf, p, n);
    return (int32_t)n;
}

es_status es_detokenize(const es_vocab *v, const int32_t *toks, int32_t n, bool remove_special,
                        char **out, size_t *len) {
    if (!v || !out || !len || n < 0 || (!toks && n))
        return es_error(ES_ERR_INVALID_ARG, "es_detokenize: NULL or negative argument");
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!valid_id(v, toks[i]))
            return es_error(ES_ERR_RANGE,
                            "es_detokenize: token %d at %d is outside the vocabulary of %d",
                            toks[i], i, v->n_tokens);
        total += v->tokens[toks[i]].piece_len; /* each < 4 GiB; n < 2^31: no overflow on 64-bit */
    }
    char *s = malloc(total + 1);
    if (!s) return es_error(ES_ERR_NOMEM, "es_detokenize: out of memory for %zu bytes", total + 1);
    const bool dummy_prefix =
        (v->kind == ES_VOCAB_SPM && v->add_space_prefix) || v->kind == ES_VOCAB_WPM;
    bool strip = dummy_prefix;
    size_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        const es_vocab_token *t = &v->tokens[toks[i]];
        size_t pn;
        const char *p = piece_of(v, toks[i], !remove_special, &pn);
        if (t->attr & ES_TOKATTR_SPECIAL) {
            strip = dummy_prefix; /* tokenizing put a space in front of what follows */
        } else if (pn) {
            if (strip && p[0] == ' ') {
                p++;
                pn--;
            }
            strip = false;
        }
        memcpy(s + k, p, pn);
        k += pn;
    }
    s[k] = '\0';
    *out = s;
    *len = k;
    return ES_OK;
}

/* ------------------------------------------------------------------------- */
/* Streaming detokenizer                                                     */
/* ------------------------------------------------------------------------- */

struct es_detok_stream {
    const es_vocab *v;
    bool render_special;
    char *buf; /* [cap] bytes; buf[head .. n) are queued */
    size_t head, n, cap;
};

es_status es_detok_stream_create(const es_vocab *v, bool render_special, es_detok_stream **out) {
    if (!v || !out) return es_error(ES_ERR_INVALID_ARG, "es_detok_stream_create: NULL argument");
    es_detok_stream *s = es_calloc(1, sizeof *s);
    if (!s) return ES_ERR_NOMEM;
    s->v = v;
    s->render_special = render_special;
    *out = s;
    return ES_OK;
}

void es_detok_stream_free(es_detok_stream *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

/* Length of the prefix of b[0..n) that does not end inside a UTF-8 character that
 * may still be completed by more bytes. Invalid bytes count as complete. */
static size_t complete_prefix(const unsigned char *b, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned c = b[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        size_t need = c >= 0xC2 && c <= 0xDF   ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 0;
        if (need <= back) return n; /* ASCII, invalid, or complete */
        if (back >= 2) {            /* the second byte must be in range for the lead */
            unsigned s2 = b[n - back + 1];
            unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
            unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            if (s2 < lo || s2 > hi) return n;
        }
        return n - back; /* a valid start still waiting for bytes */
    }
    return n;
}

/* Moves the first `ready` queued bytes to out, as far as cap allows and never cutting
 * a character, as valid UTF-8: a byte that does not begin a valid character becomes
 * U+FFFD (the bytes before `ready` are final: nothing can complete them any more).
 * Returns the bytes written. */
static size_t stream_take(es_detok_stream *s, size_t ready, char *out, size_t cap) {
    if (ready == 0 || cap == 0 || !s->buf || !out) return 0;
    const unsigned char *q = (const unsigned char *)s->buf + s->head;
    size_t i = 0, k = 0;
    while (i < ready) {
        size_t len = es_utf8_valid_len(q + i, ready - i);
        const char *src = len ? (const char *)q + i : "\xEF\xBF\xBD";
        size_t w = len ? len : 3;
        if (k + w > cap) break;
        memcpy(out + k, src, w);
        k += w;
        i += len ? len : 1;
    }
    s->head += i;
    if (s->head == s->n) s->head = s->n = 0;
    return k;
}

size_t es_detok_stream_push(es_detok_stream *s, int32_t tok, char *buf, size_t cap) {
    if (!s) return 0;
    if (valid_id(s->v, tok)) {
        size_t pn;
        const char *p = piece_of(s->v, tok, s->render_special, &pn);
        if (pn && s->n + pn > s->cap && s->head > 0) { /* drop what was taken */
            memmove(s->buf, s->buf + s->head, s->n - s->head);
            s->n -= s->head;
            s->head = 0;
        }
        if (pn && s->n + pn > s->cap) {
            size_t ncap = s->cap ? s->cap : 64;
            while (ncap < s->n + pn)
                ncap *= 2;
            char *nb = realloc(s->buf, ncap);
            if (!nb) return 0; /* the piece is dropped; nothing else is lost */
            s->buf = nb;
            s->cap = ncap;
        }
        if (pn) memcpy(s->buf + s->n, p, pn);
        s->n += pn;
    }
    size_t queued = s->n - s->head;
    return stream_take(s, complete_prefix((const unsigned char *)s->buf + s->head, queued), buf,
                       cap);
}

size_t es_detok_stream_flush(es_detok_stream *s, char *buf, size_t cap) {
    if (!s) return 0;
    return stream_take(s, s->n - s->head, buf, cap);
}

es_status es_tokenize_alloc(const es_vocab *vocab, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t **toks, int *n_toks) {
    if (!vocab || (!text && len > 0) || !toks || !n_toks)
        return es_error(ES_ERR_INVALID_ARG, "tokenize: NULL argument");
    if (len > (size_t)INT32_MAX / 2 - 16)
        return es_error(ES_ERR_INVALID_ARG, "tokenize: text of %zu bytes is too long", len);
    int32_t cap = (int32_t)len + 8, n = 0;
    int32_t *buf = malloc((size_t)cap * sizeof *buf);
    if (!buf) return es_error(ES_ERR_NOMEM, "tokenize: out of memory for %d tokens", cap);
    es_status st =
        es_tokenize(vocab, text ? text : "", len, add_special, parse_special, buf, cap, &n);
    if (st == ES_ERR_RANGE && n > cap) {
        int32_t *grown = realloc(buf, (size_t)n * sizeof *buf);
        if (!grown) {
            free(buf);
            return es_error(ES_ERR_NOMEM, "tokenize: out of memory for %d tokens", n);
        }
        buf = grown;
        cap = n;
        st = es_tokenize(vocab, text, len, add_special, parse_special, buf, cap, &n);
    }
    if (st != ES_OK) {
        free(buf);
        return st;
    }
    *toks = buf;
    *n_toks = n;
    return ES_OK;
}
