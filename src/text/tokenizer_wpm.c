/*
 * tokenizer_wpm.c — WordPiece (tokenizer.ggml.model "bert"), as Hugging Face's
 * BertNormalizer + BertPreTokenizer + WordPiece model do it:
 *
 *   1. clean: control, format and unassigned characters, U+0000 and U+FFFD are removed;
 *      White_Space characters end a word;
 *   2. CJK ideographs become words of their own;
 *   3. with lowercasing (tokenizer.ggml.normalizer.lowercase, default true, which also
 *      strips accents as BERT's uncased models do): NFD, nonspacing marks removed,
 *      lower case (tables in wpm_unicode.c);
 *   4. punctuation (Unicode P* and ASCII punctuation) becomes words of its own;
 *   5. each word: greedy longest match first; a word longer than 100 characters, or one
 *      with a position no piece matches, becomes [UNK] as a whole.
 *
 * llama.cpp's converter stores word-initial pieces as "▁word" and "##" continuations
 * without their "##", so the first piece of a word is looked up with a "▁" in front
 * and the others as they are.
 */
#include "tokenizer.h"
#include "wpm_unicode.h"

#include <stdlib.h>
#include <string.h>

#define WPM_MAX_WORD_CHARS 100 /* Hugging Face's max_input_chars_per_word */

static const char phantom_space[] = "\xE2\x96\x81"; /* "▁" */

es_status es_wpm_init(es_vocab *v, const es_gguf *g) {
    v->wpm_lowercase = true;
    es_status st = es_gguf_get_bool(g, "tokenizer.ggml.normalizer.lowercase", &v->wpm_lowercase);
    if (st != ES_OK && st != ES_ERR_NOT_FOUND) return es_error_prefix(st, "tokenizer");
    uint32_t longest = 0;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->tokens[id].text_len > longest) longest = v->tokens[id].text_len;
    v->wpm_max_len = longest;
    return ES_OK;
}

static int wpm_class(uint32_t cp) {
    int lo = 0, hi = es_wpm_n_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < es_wpm_ranges[mid].lo)
            hi = mid - 1;
        else if (cp > es_wpm_ranges[mid].hi)
            lo = mid + 1;
        else
            return es_wpm_ranges[mid].cls;
    }
    return ES_WPM_KEEP;
}

/* The folded form of cp (lower case, accents stripped) into out[0..3]; returns its length. */
static int wpm_fold(uint32_t cp, uint32_t out[4]) {
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: NFD is algorithmic */
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        if (s % 28 == 0) return 2;
        out[2] = 0x11A7 + s % 28;
        return 3;
    }
    int lo = 0, hi = es_wpm_n_folds - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < es_wpm_folds[mid].cp)
            hi = mid - 1;
        else if (cp > es_wpm_folds[mid].cp)
            lo = mid + 1;
        else {
            int n = es_wpm_folds[mid].len < 4 ? es_wpm_folds[mid].len : 4;
            for (int i = 0; i < n; i++)
                out[i] = es_wpm_fold_pool[es_wpm_folds[mid].off + i];
            return n;
        }
    }
    out[0] = cp;
    return 1;
}

/* Decodes one character at s[0..n); invalid bytes give U+FFFD and advance by one. */
static uint32_t utf8_next(const char *s, size_t n, size_t *adv) {
    uint32_t cp = 0xFFFD;
    size_t len = es_utf8_decode((const unsigned char *)s, n, &cp);
    *adv = len ? len : 1;
    return cp;
}

/* One word being built: "▁" then the word's bytes. */
typedef struct wpm_word {
    char *buf; /* [cap] bytes */
    size_t n;  /* bytes used, including the 3-byte "▁" */
    size_t cap;
    size_t chars; /* characters of the word (without "▁") */
} wpm_word;

static es_status word_add(wpm_word *w, uint32_t cp) {
    if (w->n + 4 > w->cap) {
        size_t cap = w->cap * 2;
        char *b = realloc(w->buf, cap);
        if (!b) return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for a word");
        w->buf = b;
        w->cap = cap;
    }
    w->n += es_utf8_encode(cp, w->buf + w->n);
    w->chars++;
    return ES_OK;
}

/* Greedy longest-match-first pieces of the word; the whole word is [UNK] when some
 * position has no piece or it is too long. Empties the word. */
static es_status word_flush(const es_vocab *v, wpm_word *w, es_tokbuf *out) {
    const size_t P = sizeof phantom_space - 1;
    if (w->chars == 0) return ES_OK;
    size_t first = out->n;
    bool bad = w->chars > WPM_MAX_WORD_CHARS;
    es_status st = ES_OK;
    for (size_t start = P; !bad && start < w->n;) {
        /* the first piece includes the "▁" in front */
        size_t from = start == P ? 0 : start;
        size_t end = w->n;
        if (end - from > v->wpm_max_len) end = from + v->wpm_max_len;
        while (end > start && end < w->n && ((unsigned char)w->buf[end] & 0xC0) == 0x80)
            end--; /* not inside a character */
        int32_t id = -1;
        while (end > start) {
            id = es_vocab_lookup(v, w->buf + from, end - from);
            if (id >= 0) break;
            do
                end--;
            while (end > start && ((unsigned char)w->buf[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            bad = true;
            break;
        }
        if ((st = es_tokbuf_push(out, id))) return st;
        start = end;
    }
    if (bad) {
        out->n = first;
        if (v->unk >= 0 && (st = es_tokbuf_push(out, v->unk))) return st;
    }
    w->n = P;
    w->chars = 0;
    return ES_OK;
}

/* A one-character word (punctuation, CJK). */
static es_status single_word(const es_vocab *v, wpm_word *w, uint32_t cp, es_tokbuf *out) {
    es_status st = word_flush(v, w, out);
    if (st == ES_OK) st = word_add(w, cp);
    if (st == ES_OK) st = word_flush(v, w, out);
    return st;
}

es_status es_wpm_tokenize(const es_vocab *v, const char *text, size_t len, es_tokbuf *out) {
    wpm_word w = {.buf = malloc(64), .n = sizeof phantom_space - 1, .cap = 64};
    if (!w.buf) return es_error(ES_ERR_NOMEM, "tokenizer: out of memory for a word");
    memcpy(w.buf, phantom_space, w.n);
    es_status st = ES_OK;
    for (size_t i = 0; st == ES_OK && i < len;) {
        size_t adv;
        uint32_t cp = utf8_next(text + i, len - i, &adv);
        i += adv;
        int cls = wpm_class(cp);
        if (cls == ES_WPM_DROP) continue;
        if (cls == ES_WPM_SPACE) {
            st = word_flush(v, &w, out);
            continue;
        }
        if (cls == ES_WPM_CJK) {
            st = single_word(v, &w, cp, out);
            continue;
        }
        uint32_t folded[4];
        int nf = 1;
        folded[0] = cp;
        if (v->wpm_lowercase) {
            if (cls == ES_WPM_MARK) continue; /* accents stripped */
            nf = wpm_fold(cp, folded);
        }
        for (int k = 0; st == ES_OK && k < nf; k++) {
            int c = k == 0 && folded[0] == cp ? cls : wpm_class(folded[k]);
            if (c == ES_WPM_PUNCT)
                st = single_word(v, &w, folded[k], out);
            else if (c == ES_WPM_MARK && v->wpm_lowercase)
                continue;
            else
                st = word_add(&w, folded[k]);
        }
    }
    if (st == ES_OK) st = word_flush(v, &w, out);
    free(w.buf);
    return st;
}
