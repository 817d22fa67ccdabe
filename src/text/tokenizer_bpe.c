/*
 * tokenizer_bpe.c — byte-level BPE ("gpt2" vocabularies: GPT-2, Llama 3, Qwen2, ...).
 *
 * 1. Pre-tokenizing: the fragment is cut into words by the regex of the family
 *    named in tokenizer.ggml.pre (PCRE2 with UTF and Unicode properties). The regex
 *    only ever sees valid UTF-8: maximal runs of invalid bytes become words of
 *    their own (Hugging Face tokenizers cannot take such input at all).
 * 2. Each byte of a word is one symbol: the token of the character GPT-2's
 *    bytes_to_unicode table gives that byte.
 * 3. Adjacent symbols are merged by merge rank (tokenizer.ggml.merges order; the
 *    lowest rank first, the leftmost among equals) with a heap, as Hugging Face's
 *    BPE does. With ignore_merges (Llama 3) a word that is itself a token is used
 *    whole.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The pre-tokenizer patterns, as the families' tokenizer.json files give them. */
static const char pat_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char pat_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pat_qwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
                                " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct es_bpe_regex {
    pcre2_code *code;
};

/* ------------------------------------------------------------------------- */
/* GPT-2 byte <-> unicode alphabet                                           */
/* ------------------------------------------------------------------------- */

/* The code point standing for byte b: printable Latin-1 bytes stand for
 * themselves, the others for 256, 257, ... in byte order. */
static uint32_t byte_to_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return (uint32_t)b;
    uint32_t n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
    return 256 + n;
}

/* The byte a code point stands for, or -1. */
static int cp_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1; /* 68 bytes are remapped */
    uint32_t n = cp - 256;
    for (int x = 0; x < 256; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)) &&
            n-- == 0)
            return x;
    return -1;
}

static uint32_t g_cp_of_byte[256];
static int16_t g_byte_of_cp[324];
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void) {
    for (int i = 0; i < 324; i++)
        g_byte_of_cp[i] = (int16_t)cp_to_byte((uint32_t)i);
    for (int b = 0; b < 256; b++)
        g_cp_of_byte[b] = byte_to_cp(b);
}

size_t es_bpe_decode_text(const char *s, size_t n, char *out) {
    pthread_once(&g_tables_once, init_tables);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t cl = es_utf8_valid_len(u, n - i);
        uint32_t cp = cl == 1   ? u[0]
                      : cl == 2 ? ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F)
                                : 0x800;
        if (cl >= 1 && cp < 324 && g_byte_of_cp[cp] >= 0) {
            out[k++] = (char)g_byte_of_cp[cp];
            i += cl;
        } else { /* outside the alphabet: copy the character (or stray byte) as is */
            if (cl == 0) cl = 1;
            memcpy(out + k, s + i, cl);
            k += cl;
            i += cl;
        }
    }
    return k;
}

/* ------------------------------------------------------------------------- */
/* Loading: merges and regex                                                 */
/* ------------------------------------------------------------------------- */

static uint32_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)key;
}

static const es_pairmap_slot *pair_find(const es_pairmap *m, int32_t left, int32_t right) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    for (uint32_t i = hash_pair(key) & m->mask;; i = (i + 1) & m->mask) {
        const es_pairmap_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

static es_status load_merges(es_vocab *v, const es_gguf *g) {
    const char *key = "tokenizer.ggml.merges";
    es_gguf_vtype et;
    uint64_t n;
    es_status st = es_gguf_get_arr(g, key, &et, &n);
    if (st == ES_ERR_NOT_FOUND)
        return es_error(ES_ERR_FORMAT, "tokenizer: byte-level BPE vocabulary without %s", key);
    if (st != ES_OK) return st;
    if (et != ES_GGUF_STRING)
        return es_error(ES_ERR_FORMAT, "tokenizer: %s is an array of type %d, not strings", key,
                        (int)et);
    if (n >= ((uint64_t)1 << 30))
        return es_error(ES_ERR_FORMAT, "tokenizer: %s has %llu entries", key,
                        (unsigned long long)n);
    uint32_t slots = 16;
    while (slots < 2 * n)
        slots <<= 1;
    v->merges.slots = malloc((size_t)slots * sizeof(es_pairmap_slot));
    if (!v->merges.slots)
        return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for %llu merges",
                        (unsigned long long)n);
    for (uint32_t i = 0; i < slots; i++)
        v->merges.slots[i].key = UINT64_MAX;
    v->merges.mask = slots - 1;

    char *joined = NULL;
    size_t joined_cap = 0;
    for (uint64_t r = 0; r < n; r++) {
        es_gguf_str s = es_gguf_arr_str(g, key, r);
        /* "left right": the separator is the first space after the first byte */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
        if (!sp) {
            free(joined);
            return es_error(ES_ERR_FORMAT, "tokenizer: merge %llu ('%.*s') is not 'left right'",
                            (unsigned long long)r, (int)(s.len < 64 ? s.len : 64),
                            s.ptr ? s.ptr : "");
        }
        size_t ln = (size_t)(sp - s.ptr), rn = (size_t)s.len - ln - 1;
        if (ln + rn > joined_cap) {
            joined_cap = 2 * (ln + rn);
            char *nj = realloc(joined, joined_cap);
            if (!nj) {
                free(joined);
                return es_error(ES_ERR_NOMEM, "tokenizer: out of memory reading merges");
            }
            joined = nj;
        }
        memcpy(joined, s.ptr, ln);
        memcpy(joined + ln, sp + 1, rn);
        int32_t left = es_vocab_lookup(v, s.ptr, ln), right = es_vocab_lookup(v, sp + 1, rn);
        int32_t result = es_vocab_lookup(v, joined, ln + rn);
        if (left < 0 || right < 0 || result < 0) continue; /* can never apply */
        uint64_t k = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
        uint32_t i = hash_pair(k) & v->merges.mask;
        while (v->merges.slots[i].key != UINT64_MAX && v->merges.slots[i].key != k)
            i = (i + 1) & v->merges.mask;
        if (v->merges.slots[i].key == k) continue; /* a repeated merge keeps its first rank */
        v->merges.slots[i].key = k;
        v->merges.slots[i].rank = (int32_t)r;
        v->merges.slots[i].result = result;
    }
    free(joined);
    return ES_OK;
}

static es_status compile_regex(es_vocab *v) {
    const char *pat = v->pre == ES_BPE_PRE_LLAMA3  ? pat_llama3
                      : v->pre == ES_BPE_PRE_QWEN2 ? pat_qwen2
                                                   : pat_gpt2;
    struct es_bpe_regex *re = es_calloc(1, sizeof *re);
    if (!re) return ES_ERR_NOMEM;
    v->regex = re;
    int err;
    PCRE2_SIZE erroff;
    re->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                             &erroff, NULL);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return es_error(ES_ERR_INTERNAL,
                        "tokenizer: pre-tokenizer regex does not compile at %zu: %s",
                        (size_t)erroff, (const char *)msg);
    }
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* optional speed-up */
    return ES_OK;
}

es_status es_bpe_init(es_vocab *v, const es_gguf *g, const char *pre) {
    pthread_once(&g_tables_once, init_tables);
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") ||
        !strcmp(pre, "llama-3")) {
        v->pre = ES_BPE_PRE_LLAMA3;
        v->ignore_merges = true;
        v->add_bos = true;
    } else if (!strcmp(pre, "qwen2")) {
        v->pre = ES_BPE_PRE_QWEN2;
    } else {
        v->pre = ES_BPE_PRE_GPT2; /* "gpt-2", "default" and anything unknown */
    }
    for (int b = 0; b < 256; b++) {
        char u[2];
        size_t n = es_utf8_encode(g_cp_of_byte[b], u);
        v->bpe_byte_tok[b] = es_vocab_lookup(v, u, n);
    }
    es_status st = load_merges(v, g);
    if (st == ES_OK) st = compile_regex(v);
    return st;
}

void es_bpe_free(es_vocab *v) {
    free(v->merges.slots);
    v->merges.slots = NULL;
    if (v->regex) {
        pcre2_code_free(v->regex->code);
        free(v->regex);
        v->regex = NULL;
    }
}

/* ------------------------------------------------------------------------- */
/* Merging one word                                                          */
/* ------------------------------------------------------------------------- */

typedef struct bpe_symbol {
    int32_t prev, next; /* live list, -1 at the ends */
    int32_t id;         /* token id, -1 if the byte has no token */
    bool dead;          /* merged into its left neighbour */
} bpe_symbol;

typedef struct bpe_pair {
    int32_t rank;
    int32_t left, right;       /* symbol indices */
    int32_t left_id, right_id; /* the ids when queued (stale if they changed) */
    int32_t result;
} bpe_pair;

/* true if x merges before y */
static bool bpe_before(const bpe_pair *x, const bpe_pair *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

typedef struct bpe_scratch {
    bpe_symbol *sym;
    size_t sym_cap;
    bpe_pair *heap;
    size_t heap_n, heap_cap;
    char *mapped; /* the word in the GPT-2 alphabet */
    size_t mapped_cap;
} bpe_scratch;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap : 64, bytes;
    while (cap2 < need)
        cap2 *= 2;
    if (!es_mul_size(cap2, elem, &bytes)) return false;
    void *q = realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    *cap = cap2;
    return true;
}

static es_status heap_push(bpe_scratch *w, bpe_pair p) {
    if (!grow((void **)&w->heap, &w->heap_cap, w->heap_n + 1, sizeof(bpe_pair)))
        return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for a merge queue");
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bpe_before(&p, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = p;
    return ES_OK;
}

static bpe_pair heap_pop(bpe_scratch *w) {
    bpe_pair top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->heap_n) break;
        if (c + 1 < w->heap_n && bpe_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!bpe_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->heap_n) w->heap[i] = last;
    return top;
}

static es_status try_pair(const es_vocab *v, bpe_scratch *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return ES_OK;
    int32_t a = w->sym[left].id, b = w->sym[right].id;
    if (a < 0 || b < 0) return ES_OK;
    const es_pairmap_slot *m = pair_find(&v->merges, a, b);
    if (!m) return ES_OK;
    bpe_pair p = {m->rank, left, right, a, b, m->result};
    return heap_push(w, p);
}

static es_status push_symbol_id(const es_vocab *v, int32_t id, es_tokbuf *out) {
    if (id >= 0) return es_tokbuf_push(out, id);
    return v->unk >= 0 ? es_tokbuf_push(out, v->unk) : ES_OK; /* a byte the vocab lacks */
}

static es_status bpe_word(const es_vocab *v, const unsigned char *s, size_t n, bpe_scratch *w,
                          es_tokbuf *out) {
    if (n == 0) return ES_OK;
    if (n > (size_t)INT32_MAX / 2)
        return es_error(ES_ERR_RANGE, "tokenizer: a pre-token of %zu bytes is too long", n);
    if (v->ignore_merges && n > 1) {
        if (!grow((void **)&w->mapped, &w->mapped_cap, 2 * n, 1))
            return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for a word of %zu bytes", n);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += es_utf8_encode(g_cp_of_byte[s[i]], w->mapped + k);
        int32_t id = es_vocab_lookup(v, w->mapped, k);
        if (id >= 0) return es_tokbuf_push(out, id);
    }
    if (n == 1) return push_symbol_id(v, v->bpe_byte_tok[s[0]], out);
    if (!grow((void **)&w->sym, &w->sym_cap, n, sizeof(bpe_symbol)))
        return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for a word of %zu bytes", n);
    for (size_t i = 0; i < n; i++) {
        w->sym[i].prev = (int32_t)i - 1;
        w->sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
        w->sym[i].id = v->bpe_byte_tok[s[i]];
        w->sym[i].dead = false;
    }
    w->heap_n = 0;
    es_status st = ES_OK;
    for (size_t i = 1; i < n && st == ES_OK; i++)
        st = try_pair(v, w, (int32_t)i - 1, (int32_t)i);
    while (st == ES_OK && w->heap_n > 0) {
        bpe_pair p = heap_pop(w);
        bpe_symbol *l = &w->sym[p.left], *r = &w->sym[p.right];
        if (l->dead || r->dead || l->next != p.right || l->id != p.left_id || r->id != p.right_id)
            continue;
        l->id = p.result;
        r->dead = true;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = p.left;
        st = try_pair(v, w, l->prev, p.left);
        if (st == ES_OK) st = try_pair(v, w, p.left, l->next);
    }
    for (int32_t i = 0; st == ES_OK && i >= 0; i = w->sym[i].next)
        st = push_symbol_id(v, w->sym[i].id, out);
    return st;
}

/* ------------------------------------------------------------------------- */
/* Pre-tokenizing                                                            */
/* ------------------------------------------------------------------------- */

/* Runs the regex over a valid UTF-8 run and merges each word.
 *
 * The patterns are linear: one match attempt backtracks at most over the
 * whitespace run it starts in (about two steps per character, e.g. \s*[\r\n]+
 * failing before \s+(?!\S) matches), so the match limit is set from the length
 * of the run and is never reached on any input. Should PCRE2 fail anyway, the
 * rest of the run becomes one word: the ids may then differ from the reference
 * tokenizer's but still decode to the text, and the time stays bounded. */
static es_status bpe_run(const es_vocab *v, const unsigned char *s, size_t n, pcre2_match_data *md,
                         pcre2_match_context *mctx, bpe_scratch *w, es_tokbuf *out) {
    const struct es_bpe_regex *re = v->regex;
    size_t pos = 0;
    es_status st = ES_OK;
    uint64_t limit = 1000000 + 8 * (uint64_t)n;
    pcre2_set_match_limit(mctx, limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit);
    while (st == ES_OK && pos < n) {
        int rc = pcre2_match(re->code, s, n, pos, PCRE2_NO_UTF_CHECK, md, mctx);
        size_t start, end;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            start = ov[0];
            end = ov[1];
            if (start < pos || end > n || end < start) { /* cannot happen; stay safe */
                start = pos;
                end = n;
            }
        } else if (rc == PCRE2_ERROR_NOMATCH) {
            start = end = n;
        } else { /* a limit or an error: the rest is one word */
            start = pos;
            end = n;
        }
        if (start > pos) st = bpe_word(v, s + pos, start - pos, w, out); /* unmatched gap */
        if (st == ES_OK && end == start && end < n) /* empty match: one character */
            end = start + es_utf8_valid_len(s + start, n - start);
        if (st == ES_OK && end > start) st = bpe_word(v, s + start, end - start, w, out);
        pos = end > pos ? end : n;
    }
    return st;
}

es_status es_bpe_tokenize(const es_vocab *v, const char *text, size_t len, es_tokbuf *out) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(v->regex->code, NULL);
    pcre2_match_context *mctx = pcre2_match_context_create(NULL);
    if (!md || !mctx) {
        pcre2_match_data_free(md);
        pcre2_match_context_free(mctx);
        return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for regex match data");
    }
    bpe_scratch w = {0};
    const unsigned char *s = (const unsigned char *)text;
    es_status st = ES_OK;
    size_t i = 0;
    while (st == ES_OK && i < len) {
        size_t j = i;
        if (es_utf8_valid_len(s + j, len - j)) {
            size_t cl;
            while (j < len && (cl = es_utf8_valid_len(s + j, len - j)) > 0)
                j += cl;
            st = bpe_run(v, s + i, j - i, md, mctx, &w, out);
        } else {
            while (j < len && es_utf8_valid_len(s + j, len - j) == 0)
                j++;
            st = bpe_word(v, s + i, j - i, &w, out);
        }
        i = j;
    }
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    free(w.sym);
    free(w.heap);
    free(w.mapped);
    return st;
}
