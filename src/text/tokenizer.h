/*
 * tokenizer.h — internal: the vocabulary (es_vocab) shared by the tokenizer files.
 *
 *   tokenizer.c      loading from GGUF, lookups, special-token splitting, es_tokenize
 *                    dispatch, pieces, detokenizing, the streaming detokenizer
 *   tokenizer_spm.c  SentencePiece: score-ordered pair merges with a heap, byte fallback
 *   tokenizer_bpe.c  byte-level BPE: GPT-2 byte<->unicode map, pre-tokenizer regexes
 *                    (PCRE2), rank-ordered merges with a heap
 *   tokenizer_wpm.c  WordPiece: BERT's basic pre-tokenizer (wpm_unicode.c tables), greedy
 *                    longest-match-first pieces
 *
 * A vocab owns copies of everything it uses: token texts, rendered pieces, scores,
 * merges. It is immutable after es_vocab_from_gguf; tokenizing allocates per call.
 */
#ifndef ES_TOKENIZER_H
#define ES_TOKENIZER_H

#include "common.h"
#include "gguf.h"
#include "utf8.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* GGUF tokenizer.ggml.token_type values. */
enum {
    ES_TOKTYPE_UNDEFINED = 0,
    ES_TOKTYPE_NORMAL = 1,
    ES_TOKTYPE_UNKNOWN = 2,
    ES_TOKTYPE_CONTROL = 3,
    ES_TOKTYPE_USER_DEFINED = 4,
    ES_TOKTYPE_UNUSED = 5,
    ES_TOKTYPE_BYTE = 6,
};

/* Per-token attribute flags derived from the type, the eog detection and the
 * model-specific strip rules. */
enum {
    ES_TOKATTR_CONTROL = 1 << 0,  /* hidden unless specials are rendered */
    ES_TOKATTR_SPECIAL = 1 << 1,  /* matched literally in text (control/user/unknown) */
    ES_TOKATTR_USER = 1 << 2,     /* user-defined: matched even without parse_special */
    ES_TOKATTR_EOG = 1 << 3,      /* ends generation */
    ES_TOKATTR_LSTRIP = 1 << 4,   /* swallows whitespace before it when matched */
    ES_TOKATTR_RSTRIP = 1 << 5,   /* swallows whitespace after it when matched */
    ES_TOKATTR_MERGEABLE = 1 << 6 /* may be produced by SPM merging (normal/user-defined) */
};

typedef enum es_vocab_kind {
    ES_VOCAB_SPM = 0, /* tokenizer.ggml.model "llama" */
    ES_VOCAB_BPE = 1, /* tokenizer.ggml.model "gpt2" */
    ES_VOCAB_WPM = 2, /* tokenizer.ggml.model "bert" (WordPiece) */
} es_vocab_kind;

/* Byte-level BPE pre-tokenizer families (tokenizer.ggml.pre). */
typedef enum es_bpe_pre {
    ES_BPE_PRE_GPT2 = 0,   /* "gpt-2", "default", unknown values */
    ES_BPE_PRE_LLAMA3 = 1, /* "llama-bpe", "llama3", "llama-v3" */
    ES_BPE_PRE_QWEN2 = 2,  /* "qwen2" */
} es_bpe_pre;

typedef struct es_vocab_token {
    uint32_t text_off; /* offset of the stored text in es_vocab.text (NUL-terminated) */
    uint32_t text_len;
    uint32_t piece_off; /* offset of the rendered bytes in es_vocab.pieces */
    uint32_t piece_len;
    float score;  /* SPM merge priority (higher first) */
    uint8_t type; /* ES_TOKTYPE_* */
    uint8_t attr; /* ES_TOKATTR_* */
} es_vocab_token;

/* Open-addressing hash of token text -> id. */
typedef struct es_strmap {
    int32_t *slots; /* [n_slots] token id or -1 */
    uint32_t mask;  /* n_slots - 1 (n_slots a power of two) */
} es_strmap;

/* Open-addressing hash of a merge pair (left id, right id) -> rank and result id. */
typedef struct es_pairmap_slot {
    uint64_t key;   /* (left << 32) | right, UINT64_MAX = empty */
    int32_t rank;   /* merge order (lower merges first) */
    int32_t result; /* id of the merged token */
} es_pairmap_slot;

typedef struct es_pairmap {
    es_pairmap_slot *slots; /* [mask + 1] */
    uint32_t mask;
} es_pairmap;

struct es_bpe_regex; /* tokenizer_bpe.c */

struct es_vocab {
    es_vocab_kind kind;
    int32_t n_tokens;
    es_vocab_token *tokens; /* [n_tokens] */
    char *text;             /* all stored texts, each NUL-terminated */
    char *pieces;           /* all rendered pieces (not terminated) */
    es_strmap map;          /* stored text -> id (first id wins on duplicates) */

    int32_t bos, eos, eot, eom, unk, pad; /* -1 if none */
    bool add_bos, add_eos;
    bool add_space_prefix; /* SPM: put one space in front of each text fragment */

    /* tokens matched literally in text (ES_TOKATTR_SPECIAL), grouped by first byte,
     * longest first within a group: those starting with byte b are
     * special[special_start[b] .. special_start[b + 1]). */
    int32_t *special; /* [n_special] ids */
    int32_t n_special;
    int32_t special_start[257];

    /* SPM */
    int32_t byte_tok[256];          /* <0xNN> token of each byte, -1 if absent */
    struct es_spm_pairs *spm_pairs; /* character pairs inside mergeable pieces */

    /* BPE */
    es_bpe_pre pre;
    bool ignore_merges; /* a whole pre-token found in the vocab is used as is */
    es_pairmap merges;
    int32_t bpe_byte_tok[256];  /* token of the single mapped character of each byte */
    struct es_bpe_regex *regex; /* compiled pre-tokenizer */

    /* WordPiece and sentence pairs */
    int32_t cls, sep;     /* [CLS]/<s> and [SEP]/</s> of encoders (cls_token_id, seperator_token_id;
                             default bos and eos), -1 if none */
    bool wpm_lowercase;   /* tokenizer.ggml.normalizer.lowercase (default true): lower case and
                             strip accents */
    uint32_t wpm_max_len; /* bytes of the longest token text (bounds the greedy search) */
};

/* Builds a vocab from the tokenizer metadata of an open GGUF. On success *out owns
 * copies of all it needs (g may be closed afterwards); free with es_vocab_free.
 * The model loader calls this so that a model owns its vocab. */
es_status es_vocab_from_gguf(const es_gguf *g, es_vocab **out);

/* ---- shared helpers (tokenizer.c) ---- */

/* A growable list of token ids. */
typedef struct es_tokbuf {
    int32_t *ids;
    size_t n, cap;
} es_tokbuf;

es_status es_tokbuf_push(es_tokbuf *b, int32_t id);

/* Id of a token with exactly this text, or -1. */
int32_t es_vocab_lookup(const es_vocab *v, const char *s, size_t n);

/* ---- per-kind tokenizers: append the ids of one text fragment to out ---- */

/* SPM: load-time index (the character pairs that occur inside pieces, so that the
 * text can be cut where no merge can ever cross) and per-fragment tokenizing; the
 * caller decides the dummy prefix. */
es_status es_spm_init(es_vocab *v);
void es_spm_free(es_vocab *v);
es_status es_spm_tokenize(const es_vocab *v, const char *text, size_t len, bool space_prefix,
                          es_tokbuf *out);

/* BPE: load-time setup (byte maps, merges, regex) and per-fragment tokenizing. */
es_status es_bpe_init(es_vocab *v, const es_gguf *g, const char *pre);
void es_bpe_free(es_vocab *v);
es_status es_bpe_tokenize(const es_vocab *v, const char *text, size_t len, es_tokbuf *out);
/* WordPiece: load-time setup (normalizer flag, longest piece) and per-fragment tokenizing. */
es_status es_wpm_init(es_vocab *v, const es_gguf *g);
es_status es_wpm_tokenize(const es_vocab *v, const char *text, size_t len, es_tokbuf *out);

/* Decodes a byte-level token text (GPT-2 unicode alphabet) into bytes; out must hold
 * n bytes (decoding never grows). Characters outside the alphabet are copied as is.
 * Returns the decoded length. */
size_t es_bpe_decode_text(const char *s, size_t n, char *out);

#endif /* ES_TOKENIZER_H */
