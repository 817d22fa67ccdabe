/*
 * fuzz_tokenizer.c — random bytes through both tokenizer kinds (llama-spm:
 * SentencePiece, qwen2: byte-level BPE), with and without parse_special, then back
 * through es_detokenize, es_token_to_piece and the streaming detokenizer.
 *
 * Invariants checked (abort on violation):
 *   - byte-level BPE round-trips every input exactly (invalid UTF-8 included);
 *   - SentencePiece round-trips every input without a literal "▁" (which it cannot
 *     tell from an escaped space);
 *   - a too-small cap gives ES_ERR_RANGE with the same count;
 *   - the stream, fed through a tiny buffer, gives the same bytes as es_detokenize.
 * The vocabularies come from $ES_SHARED or ../shared; without them text inputs are
 * no-ops. An input starting with "GGUF" is instead a vocabulary file: it is loaded
 * with es_vocab_from_gguf (failing is fine, crashing is not) and used on a fixed
 * text; two tiny generated vocabularies (SPM and BPE) seed this mode.
 */
#include "emosteer.h"
#include "fuzz_seeds.h"
#include "gguf.h"
#include "tokenizer.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text inputs are cut to FUZZ_MAX_BYTES: each one is tokenized and checked four
 * times (two vocabularies, with and without parse_special), which under ASan and
 * libFuzzer's comparison tracing costs about a microsecond a byte; tokenizer logic is
 * local (pieces are at most tens of bytes), so longer texts find little more and slow
 * a campaign down. The too-small-cap check runs on the first FUZZ_SMALL_CAP_BYTES. */
#ifndef FUZZ_MAX_BYTES
#define FUZZ_MAX_BYTES 64
#endif
#define FUZZ_SMALL_CAP_BYTES 32

static es_vocab *g_spm, *g_bpe;
static int g_loaded; /* 0 = not tried, 1 = loaded, -1 = unavailable */

static const char *shared_dir(void) {
    const char *env = getenv("ES_SHARED");
    return env && *env ? env : "../shared";
}

static void load_once(void) {
    if (g_loaded) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", shared_dir());
    es_status a = es_vocab_load(path, &g_spm);
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-qwen2.gguf", shared_dir());
    es_status b = es_vocab_load(path, &g_bpe);
    g_loaded = (a == ES_OK && b == ES_OK) ? 1 : -1;
}

static void fail(const char *what, const es_vocab *v, const uint8_t *data, size_t size) {
    fprintf(stderr, "fuzz_tokenizer: %s (%s vocab, %zu input bytes: '%.*s')\n", what,
            v == g_spm ? "spm" : "bpe", size, (int)(size < 200 ? size : 200), (const char *)data);
    abort();
}

static void check_one(const es_vocab *v, const uint8_t *data, size_t size, bool parse_special,
                      bool expect_exact) {
    int32_t cap =
        (int32_t)size * 4 + 8; /* byte fallback: at most 4 ids per byte, + prefix + BOS/EOS */
    int32_t *ids = malloc((size_t)cap * sizeof(int32_t));
    int32_t n = 0;
    if (es_tokenize(v, (const char *)data, size, true, parse_special, ids, cap, &n) != ES_OK)
        fail("tokenize failed", v, data, size);
    if (n > 1 && !parse_special && size <= FUZZ_SMALL_CAP_BYTES) {
        /* ES_ERR_RANGE leaves ids as they were: no need to tokenize again after it */
        int32_t need = 0;
        if (es_tokenize(v, (const char *)data, size, true, parse_special, ids, n - 1, &need) !=
                ES_ERR_RANGE ||
            need != n)
            fail("small cap did not report the needed count", v, data, size);
    }
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= es_vocab_n_tokens(v)) fail("id out of range", v, data, size);
        char piece[8];
        int32_t k = es_token_to_piece(v, ids[i], piece, sizeof piece, true);
        if (k < 0) {
            char *big = malloc((size_t)-k);
            if (es_token_to_piece(v, ids[i], big, -k, true) != -k)
                fail("piece size mismatch", v, data, size);
            free(big);
        }
    }
    /* without BOS/EOS for the round trip */
    int32_t off = (es_vocab_add_bos(v) && n > 0) ? 1 : 0;
    int32_t m = n - off - ((es_vocab_add_eos(v) && n > off) ? 1 : 0);
    char *back = NULL;
    size_t len = 0;
    if (es_detokenize(v, ids + off, m, false, &back, &len) != ES_OK)
        fail("detokenize failed", v, data, size);
    if (expect_exact && (len != size || memcmp(back, data, size) != 0))
        fail("round trip differs", v, data, size);

    /* the stream through a 5-byte window equals the concatenated pieces with invalid
     * UTF-8 repaired (each bad byte becomes U+FFFD) */
    es_detok_stream *s = NULL;
    if (es_detok_stream_create(v, true, &s) != ES_OK) fail("stream create", v, data, size);
    size_t want_len = 0;
    for (int32_t i = off; i < off + m; i++) {
        int32_t pk = es_token_to_piece(v, ids[i], NULL, 0, true);
        want_len += (size_t)(pk < 0 ? -pk : pk);
    }
    char *concat = malloc(want_len + 1), *streamed = malloc(3 * want_len + 1),
         *repaired = malloc(3 * want_len + 1);
    size_t total = 0, pieces = 0;
    for (int32_t i = off; i < off + m; i++) {
        char buf[5];
        pieces += (size_t)es_token_to_piece(v, ids[i], concat + pieces,
                                            (int32_t)(want_len - pieces), true);
        size_t got = es_detok_stream_push(s, ids[i], buf, sizeof buf);
        if (total + got > 3 * want_len) fail("stream gives too many bytes", v, data, size);
        memcpy(streamed + total, buf, got);
        total += got;
    }
    char buf[5];
    size_t k;
    while ((k = es_detok_stream_flush(s, buf, sizeof buf)) > 0) {
        if (total + k > 3 * want_len) fail("stream flush gives too many bytes", v, data, size);
        memcpy(streamed + total, buf, k);
        total += k;
    }
    size_t n_repaired = es_utf8_repair(concat, pieces, repaired);
    if (pieces != want_len || total != n_repaired || memcmp(streamed, repaired, total) != 0)
        fail("stream differs from the repaired pieces", v, data, size);
    for (size_t i = 0; i < total;) {
        size_t cl = es_utf8_valid_len((const unsigned char *)streamed + i, total - i);
        if (cl == 0) fail("stream gives invalid UTF-8", v, data, size);
        i += cl;
    }
    es_detok_stream_free(s);
    free(streamed);
    free(repaired);
    free(concat);
    free(back);
    free(ids);
}

/* libFuzzer: the vocabularies are loaded once here, not on the first input (the
 * standalone driver has no initializer; LLVMFuzzerTestOneInput loads them then). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    es_fuzz_prime_corpus(*argc, *argv);
    load_once();
    return 0;
}

/* A GGUF input: load its vocabulary (any failure is fine), then tokenize with it. */
static void check_gguf(const uint8_t *data, size_t size) {
    es_gguf *g = NULL;
    if (es_gguf_open_memory(data, size, &g) != ES_OK) return;
    es_vocab *v = NULL;
    if (es_vocab_from_gguf(g, &v) == ES_OK) {
        static const char text[] = "hello <s> world<|endoftext|> ab\xE2\x96\x81 \xFF\n\t 123";
        int32_t ids[256], n = 0;
        for (int ps = 0; ps < 2; ps++) {
            if (es_tokenize(v, text, sizeof text - 1, true, ps, ids, 256, &n) != ES_OK) continue;
            for (int32_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= es_vocab_n_tokens(v))
                    fail("id out of range", v, data, size);
            char *back = NULL;
            size_t len = 0;
            if (es_detokenize(v, ids, n, ps, &back, &len) != ES_OK)
                fail("detokenize", v, data, size);
            free(back);
        }
        for (int32_t id = -1; id <= es_vocab_n_tokens(v); id++) {
            char piece[64];
            (void)es_token_to_piece(v, id, piece, sizeof piece, true);
            (void)es_vocab_is_eog(v, id);
        }
        es_vocab_free(v);
    }
    es_gguf_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 4 && !memcmp(data, "GGUF", 4)) {
        check_gguf(data, size);
        return 0;
    }
    load_once();
    if (g_loaded < 0) return 0;
    if (size > FUZZ_MAX_BYTES) size = FUZZ_MAX_BYTES;
    bool has_ws_mark = false; /* a literal U+2581 cannot survive SentencePiece */
    for (size_t i = 0; i + 2 < size; i++)
        if (data[i] == 0xE2 && data[i + 1] == 0x96 && data[i + 2] == 0x81) has_ws_mark = true;
    for (int ps = 0; ps < 2; ps++) {
        check_one(g_bpe, data, size, ps, true);
        check_one(g_spm, data, size, ps, !has_ws_mark);
    }
    return 0;
}

/* Writes a tiny vocab-only GGUF of either kind (byte tokens, a few merges or
 * scored pieces, specials) to path; false if it could not. */
static bool write_tiny_vocab(const char *path, bool bpe) {
    enum { N_MAX = 300 };
    static char texts[N_MAX][16];
    const char *toks[N_MAX];
    int32_t types[N_MAX];
    float scores[N_MAX];
    int n = 0;
    if (!bpe) {
        const char *head[] = {"<unk>", "<s>", "</s>"};
        for (int i = 0; i < 3; i++, n++) {
            snprintf(texts[n], 16, "%s", head[i]);
            types[n] = i == 0 ? 2 : 3;
        }
        for (int b = 0; b < 256; b++, n++) {
            snprintf(texts[n], 16, "<0x%02X>", b);
            types[n] = 6;
        }
        const char *pieces[] = {"\xE2\x96\x81",
                                "a",
                                "b",
                                "h",
                                "e",
                                "l",
                                "o",
                                "\xE2\x96\x81"
                                "a",
                                "ab",
                                "he",
                                "ll",
                                "hello",
                                "<tag>"};
        for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++, n++) {
            snprintf(texts[n], 16, "%s", pieces[i]);
            types[n] = i + 1 == sizeof pieces / sizeof pieces[0] ? 4 : 1;
        }
    } else {
        for (int b = 0; b < 256; b++, n++) { /* the GPT-2 alphabet, in code point order */
            int cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174) ? b : -1;
            if (cp < 0) {
                int k = 0;
                for (int x = 0; x < b; x++)
                    if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174))) k++;
                cp = 256 + k;
            }
            if (cp < 0x80) {
                texts[n][0] = (char)cp;
                texts[n][1] = 0;
            } else {
                texts[n][0] = (char)(0xC0 | (cp >> 6));
                texts[n][1] = (char)(0x80 | (cp & 0x3F));
                texts[n][2] = 0;
            }
            types[n] = 1;
        }
        const char *pieces[] = {"he",        "ll", "hell",        "hello",
                                "\xC4\xA0w", "or", "\xC4\xA0wor", "<|endoftext|>"};
        for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++, n++) {
            snprintf(texts[n], 16, "%s", pieces[i]);
            types[n] = i + 1 == sizeof pieces / sizeof pieces[0] ? 3 : 1;
        }
    }
    for (int i = 0; i < n; i++) {
        toks[i] = texts[i];
        scores[i] = -(float)i;
    }
    static const char *const merges[] = {"h e",        "l l", "he ll",       "hell o",
                                         "\xC4\xA0 w", "o r", "\xC4\xA0w or"};
    es_gguf_writer *w = es_gguf_writer_new();
    if (!w) return false;
    es_gguf_writer_set_str(w, "general.architecture", "llama");
    es_gguf_writer_set_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
    if (bpe) es_gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2");
    es_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    es_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ES_GGUF_INT32, types, (uint64_t)n);
    if (bpe) {
        es_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges,
                                   sizeof merges / sizeof merges[0]);
        es_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)n - 1);
    } else {
        es_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ES_GGUF_FLOAT32, scores, (uint64_t)n);
        es_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        es_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    }
    bool ok = es_gguf_writer_write(w, path) == ES_OK;
    es_gguf_writer_free(w);
    return ok;
}

int es_fuzz_seed_paths(char paths[][4096], int max) {
    static const char *const names[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3"};
    int n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && n < max; i++)
        snprintf(paths[n++], 4096, "%s/vocab/ggml-vocab-%s.gguf.inp", shared_dir(), names[i]);
    for (int bpe = 0; bpe < 2 && n < max; bpe++) { /* vocab loader seeds */
        snprintf(paths[n], 4096, "/tmp/es_fuzz_tokenizer_%s.gguf", bpe ? "bpe" : "spm");
        if (write_tiny_vocab(paths[n], bpe)) n++;
    }
    return n;
}

const uint8_t *es_fuzz_builtin_seed(size_t *n) {
    static const char seed[] = "<|im_start|>user\nH\xC3\xA9llo <s>wor</s>ld<unk> \xF0\x9F\xA6\x99 "
                               "1234567 'll 'S\n\n\t <|im_end|>"
                               "[PAD151650]\xFF\xFE\xE2\x82 \xC3(<|endoftext|>";
    *n = sizeof seed - 1;
    return (const uint8_t *)seed;
}
