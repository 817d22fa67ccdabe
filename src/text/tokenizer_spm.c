/*
 * tokenizer_spm.c — SentencePiece BPE ("llama" vocabularies).
 *
 * The fragment is escaped (each ' ' becomes U+2581 "▁", optionally one "▁" in
 * front), cut into UTF-8 characters, and adjacent symbols are merged greedily:
 * always the pair whose concatenation is a vocabulary piece of the highest score,
 * the leftmost one among equal scores. Candidate pairs sit in a max-heap; a pair
 * made stale by an earlier merge is recognised and dropped when popped, so the
 * whole fragment costs O(n log n) however long it is. Symbols left that are not
 * pieces (characters outside the vocabulary) fall back to their bytes as <0xNN>
 * tokens, or to the unknown token if the vocabulary has no byte tokens.
 */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Where merges can happen                                                   */
/* ------------------------------------------------------------------------- */

/* A merge joins two adjacent symbols only if their concatenation lies inside some
 * piece, so it always joins two characters that are adjacent inside that piece.
 * Between two characters that are adjacent in no mergeable piece (typically a
 * letter and the "▁" after it) no merge can ever cross: the text is cut there and
 * each segment is merged on its own, with a small heap that stays in cache. The
 * result is the same as with one heap over the whole text. */

typedef struct spm_pair_key {
    uint64_t bytes; /* the two characters' bytes, little-endian, zero-padded */
    uint8_t len_a;  /* bytes of the first character; 0 marks an empty slot */
    uint8_t len;    /* bytes of both */
} spm_pair_key;

struct es_spm_pairs {
    spm_pair_key *slots; /* [mask + 1] */
    uint32_t mask;
    uint32_t n;
};

static spm_pair_key pair_key(const unsigned char *s, size_t len_a, size_t len) {
    spm_pair_key k = {0, (uint8_t)len_a, (uint8_t)len};
    for (size_t i = 0; i < len; i++)
        k.bytes |= (uint64_t)s[i] << (8 * i);
    return k;
}

static uint32_t pair_hash(spm_pair_key k) {
    uint64_t h = k.bytes ^ ((uint64_t)k.len_a << 56) ^ ((uint64_t)k.len << 60);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

static bool pairs_has(const struct es_spm_pairs *p, spm_pair_key k) {
    for (uint32_t i = pair_hash(k) & p->mask;; i = (i + 1) & p->mask) {
        const spm_pair_key *s = &p->slots[i];
        if (s->len_a == 0) return false;
        if (s->bytes == k.bytes && s->len_a == k.len_a && s->len == k.len) return true;
    }
}

static void pairs_put(struct es_spm_pairs *p, spm_pair_key k) {
    uint32_t i = pair_hash(k) & p->mask;
    while (p->slots[i].len_a != 0) {
        const spm_pair_key *s = &p->slots[i];
        if (s->bytes == k.bytes && s->len_a == k.len_a && s->len == k.len) return;
        i = (i + 1) & p->mask;
    }
    p->slots[i] = k;
    p->n++;
}

static es_status pairs_grow(struct es_spm_pairs *p) {
    uint32_t old_n = p->mask + 1, n = old_n * 2;
    spm_pair_key *old = p->slots;
    p->slots = calloc(n, sizeof(spm_pair_key));
    if (!p->slots) {
        p->slots = old;
        return es_error(ES_ERR_NOMEM, "tokenizer: out of memory indexing piece characters");
    }
    p->mask = n - 1;
    p->n = 0;
    for (uint32_t i = 0; i < old_n; i++)
        if (old[i].len_a) pairs_put(p, old[i]);
    free(old);
    return ES_OK;
}

es_status es_spm_init(es_vocab *v) {
    struct es_spm_pairs *p = es_calloc(1, sizeof *p);
    if (!p) return ES_ERR_NOMEM;
    v->spm_pairs = p;
    p->mask = 1023;
    p->slots = es_calloc(p->mask + 1, sizeof(spm_pair_key));
    if (!p->slots) return ES_ERR_NOMEM;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        const es_vocab_token *t = &v->tokens[id];
        if (!(t->attr & ES_TOKATTR_MERGEABLE)) continue;
        const unsigned char *s = (const unsigned char *)v->text + t->text_off;
        size_t n = t->text_len, prev = 0, prev_len = 0;
        for (size_t i = 0; i < n;) {
            size_t cl = es_utf8_valid_len(s + i, n - i);
            if (cl == 0) cl = 1;
            if (prev_len) {
                if (p->n * 2 >= p->mask) {
                    es_status st = pairs_grow(p);
                    if (st != ES_OK) return st;
                }
                pairs_put(p, pair_key(s + prev, prev_len, prev_len + cl));
            }
            prev = i;
            prev_len = cl;
            i += cl;
        }
    }
    return ES_OK;
}

void es_spm_free(es_vocab *v) {
    if (!v->spm_pairs) return;
    free(v->spm_pairs->slots);
    free(v->spm_pairs);
    v->spm_pairs = NULL;
}

/* ------------------------------------------------------------------------- */
/* Merging                                                                   */
/* ------------------------------------------------------------------------- */

typedef struct spm_symbol {
    int32_t prev, next; /* neighbours in the live list, -1 at the ends */
    uint32_t off, len;  /* bytes of the escaped text; len 0 = merged into its left */
    int32_t id;         /* vocabulary id of the text, -1 if not a piece */
} spm_symbol;

typedef struct spm_pair {
    float score;  /* score of the merged piece */
    int32_t left; /* index of the left symbol (its position: ties go left) */
    int32_t right;
    uint32_t len; /* bytes of the merged text when queued */
    int32_t id;   /* the merged piece */
} spm_pair;

typedef struct spm_heap {
    spm_pair *a;
    size_t n, cap;
} spm_heap;

/* true if x should be merged before y */
static bool pair_before(const spm_pair *x, const spm_pair *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static es_status heap_push(spm_heap *h, spm_pair p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256, bytes;
        if (!es_mul_size(cap, sizeof(spm_pair), &bytes))
            return es_error(ES_ERR_NOMEM, "tokenizer: merge queue of %zu pairs overflows", cap);
        spm_pair *a = realloc(h->a, bytes);
        if (!a)
            return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for a merge queue of %zu pairs",
                            cap);
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h->a[parent])) break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = p;
    return ES_OK;
}

static spm_pair heap_pop(spm_heap *h) {
    spm_pair top = h->a[0];
    spm_pair last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pair_before(&h->a[c + 1], &h->a[c])) c++;
        if (!pair_before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

/* Queues the merge of symbols left and right if their concatenation is a piece. */
static es_status try_pair(const es_vocab *v, const char *esc, const spm_symbol *sym, int32_t left,
                          int32_t right, spm_heap *h) {
    if (left < 0 || right < 0) return ES_OK;
    uint32_t len = sym[left].len + sym[right].len;
    int32_t id = es_vocab_lookup(v, esc + sym[left].off, len);
    if (id < 0 || !(v->tokens[id].attr & ES_TOKATTR_MERGEABLE)) return ES_OK;
    spm_pair p = {v->tokens[id].score, left, right, len, id};
    return heap_push(h, p);
}

/* Merges the symbols [first, end) (a list linked by prev/next) as far as pieces go. */
static es_status merge_segment(const es_vocab *v, const char *esc, spm_symbol *sym, int32_t first,
                               int32_t end, spm_heap *heap) {
    heap->n = 0;
    es_status st = ES_OK;
    for (int32_t i = first + 1; i < end && st == ES_OK; i++)
        st = try_pair(v, esc, sym, i - 1, i, heap);
    while (st == ES_OK && heap->n > 0) {
        spm_pair p = heap_pop(heap);
        spm_symbol *l = &sym[p.left], *r = &sym[p.right];
        if (l->len == 0 || r->len == 0 || l->next != p.right || l->len + r->len != p.len) continue;
        l->len += r->len;
        l->id = p.id;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        st = try_pair(v, esc, sym, l->prev, p.left, heap);
        if (st == ES_OK) st = try_pair(v, esc, sym, p.left, l->next, heap);
    }
    return st;
}

/* Appends the ids of a symbol that is not a piece: its bytes, or one unknown. */
static es_status byte_fallback(const es_vocab *v, const unsigned char *s, size_t n,
                               es_tokbuf *out) {
    bool all_bytes = true;
    for (size_t i = 0; i < n; i++)
        if (v->byte_tok[s[i]] < 0) all_bytes = false;
    if (!all_bytes) return v->unk >= 0 ? es_tokbuf_push(out, v->unk) : ES_OK;
    for (size_t i = 0; i < n; i++) {
        es_status st = es_tokbuf_push(out, v->byte_tok[s[i]]);
        if (st != ES_OK) return st;
    }
    return ES_OK;
}

es_status es_spm_tokenize(const es_vocab *v, const char *text, size_t len, bool space_prefix,
                          es_tokbuf *out) {
    static const char ws[3] = {'\xE2', '\x96', '\x81'}; /* U+2581 */
    size_t n_space = 0;
    for (size_t i = 0; i < len; i++)
        n_space += text[i] == ' ';
    size_t esc_len = len + 2 * n_space + (space_prefix ? 3 : 0);
    if (esc_len < len || esc_len > (size_t)INT32_MAX)
        return es_error(ES_ERR_RANGE,
                        "tokenizer: a text fragment of %zu bytes is too long (limit 2 GiB escaped)",
                        len);

    char *esc = malloc(esc_len ? esc_len : 1);
    spm_symbol *sym = malloc((esc_len ? esc_len : 1) * sizeof(spm_symbol));
    spm_heap heap = {0};
    es_status st = ES_OK;
    if (!esc || !sym) {
        st = es_error(ES_ERR_NOMEM, "tokenizer: out of memory for a fragment of %zu bytes", len);
        goto done;
    }
    size_t k = 0;
    if (space_prefix) {
        memcpy(esc, ws, 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(esc + k, ws, 3);
            k += 3;
        } else {
            esc[k++] = text[i];
        }
    }

    /* one symbol per UTF-8 character (an invalid byte is a symbol of its own) */
    int32_t n_sym = 0;
    for (size_t i = 0; i < esc_len;) {
        size_t cl = es_utf8_valid_len((const unsigned char *)esc + i, esc_len - i);
        if (cl == 0) cl = 1;
        spm_symbol *s = &sym[n_sym];
        s->prev = n_sym - 1;
        s->next = n_sym + 1;
        s->off = (uint32_t)i;
        s->len = (uint32_t)cl;
        int32_t id = es_vocab_lookup(v, esc + i, cl);
        s->id = (id >= 0 && (v->tokens[id].attr & ES_TOKATTR_MERGEABLE)) ? id : -1;
        n_sym++;
        i += cl;
    }
    /* segments [seg, end) of symbols between boundaries no merge can cross */
    for (int32_t seg = 0, end; st == ES_OK && seg < n_sym; seg = end) {
        for (end = seg + 1; end < n_sym; end++) {
            const spm_symbol *a = &sym[end - 1], *b = &sym[end];
            if (a->len + b->len > 8 ||
                !pairs_has(v->spm_pairs,
                           pair_key((const unsigned char *)esc + a->off, a->len, a->len + b->len)))
                break;
        }
        sym[seg].prev = -1;
        sym[end - 1].next = -1;
        st = merge_segment(v, esc, sym, seg, end, &heap);
        for (int32_t i = seg; st == ES_OK && i >= 0; i = sym[i].next) {
            if (sym[i].id >= 0)
                st = es_tokbuf_push(out, sym[i].id);
            else
                st = byte_fallback(v, (const unsigned char *)esc + sym[i].off, sym[i].len, out);
        }
    }
done:
    free(esc);
    free(sym);
    free(heap.a);
    return st;
}
