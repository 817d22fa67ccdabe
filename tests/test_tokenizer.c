/*
 * test_tokenizer.c — conformance of the tokenizers with the reference ids of
 * ../shared/vocab (Hugging Face tokenizers' output, as used by llama.cpp's
 * test-tokenizer-0), round trips, special tokens, pieces, streaming, errors and
 * speed on the demo model's vocabulary.
 *
 * Reference format: NAME.gguf.inp holds texts each followed by a line
 * "__ggml_vocab_test__"; NAME.gguf.out holds one line of space-separated ids per
 * text, tokenized without BOS/EOS (add_special = false; the data show no BOS).
 */
#include "testutil.h"

#include "emosteer.h"
#include "gguf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOK 4096

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static es_vocab *load_vocab(const char *rel) {
    const char *path = es_test_shared_path(rel);
    es_vocab *v = NULL;
    es_status st = es_vocab_load(path, &v);
    CHECK(st == ES_OK, "load %s: %s", rel, es_last_error());
    return st == ES_OK ? v : NULL;
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "    %s (%d):", label, n);
    for (int i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 64 ? " ...\n" : "\n");
}

static bool valid_utf8(const char *s, size_t n) {
    /* strict enough for the reference texts */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!l || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

/* Runs one NAME.gguf.inp/.out pair; returns the number of mismatches. */
static int conformance(const char *name, bool expect_roundtrip) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    es_vocab *v = load_vocab(rel);
    if (!v) return 1;
    char inp_path[4096], out_path[4096];
    snprintf(inp_path, sizeof inp_path, "%s.inp", es_test_shared_path(rel));
    snprintf(out_path, sizeof out_path, "%s.out", es_test_shared_path(rel));
    size_t inp_len = 0, out_len = 0;
    char *inp = es_test_read_file(inp_path, &inp_len);
    char *outs = es_test_read_file(out_path, &out_len);
    CHECK(inp && outs, "%s: cannot read .inp/.out", name);
    if (!inp || !outs) {
        free(inp);
        free(outs);
        es_vocab_free(v);
        return 1;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    int n_text = 0, n_bad = 0, n_round = 0, n_valid = 0;
    int32_t *ids = malloc(MAX_TOK * sizeof(int32_t)), *want = malloc(MAX_TOK * sizeof(int32_t));
    char *text = inp, *line = outs;
    for (;;) {
        char *end = strstr(text, sep);
        if (!end) break;
        size_t tlen = (size_t)(end - text);
        /* the matching .out line */
        char *eol = strchr(line, '\n');
        if (!eol) {
            CHECK(false, "%s: .out has fewer lines than .inp has texts (%d)", name, n_text + 1);
            break;
        }
        *eol = '\0';
        int n_want = 0;
        for (char *p = line; *p && n_want < MAX_TOK;) {
            char *q;
            long x = strtol(p, &q, 10);
            if (q == p) break;
            want[n_want++] = (int32_t)x;
            p = q;
        }
        line = eol + 1;

        int32_t n = 0;
        es_status st = es_tokenize(v, text, tlen, false, false, ids, MAX_TOK, &n);
        bool same = st == ES_OK && n == n_want && !memcmp(ids, want, (size_t)n * sizeof(int32_t));
        if (!same) {
            n_bad++;
            if (n_bad <= 3) {
                fprintf(stderr, "  %s mismatch on text %d '%.*s' (status %d)\n", name, n_text,
                        (int)tlen, text, st);
                print_ids("want", want, n_want);
                print_ids("got ", ids, n);
            }
        }
        /* round trip */
        char *back = NULL;
        size_t back_len = 0;
        if (st == ES_OK && es_detokenize(v, ids, n, true, &back, &back_len) == ES_OK) {
            bool ok = back_len == tlen && !memcmp(back, text, tlen);
            n_round += ok;
            if (!ok && expect_roundtrip)
                fprintf(stderr, "  %s round trip differs on text %d: '%.*s' -> '%s'\n", name,
                        n_text, (int)tlen, text, back);
            free(back);
        }
        n_valid += valid_utf8(text, tlen);
        n_text++;
        text = end + sep_len;
    }
    printf("%-10s %d texts, %d mismatches, %d/%d round trip\n", name, n_text, n_bad, n_round,
           n_text);
    CHECK(n_text == 46, "%s: %d texts (expected 46)", name, n_text);
    CHECK(n_bad == 0, "%s: %d of %d texts tokenize differently from the reference", name, n_bad,
          n_text);
    if (expect_roundtrip)
        CHECK(n_round == n_valid, "%s: %d of %d valid texts round-trip", name, n_round, n_valid);
    free(ids);
    free(want);
    free(inp);
    free(outs);
    es_vocab_free(v);
    return n_bad;
}

static int tok(const es_vocab *v, const char *s, bool add_special, bool parse_special,
               int32_t *ids) {
    int32_t n = -1;
    es_status st = es_tokenize(v, s, strlen(s), add_special, parse_special, ids, MAX_TOK, &n);
    CHECK(st == ES_OK, "tokenize '%s': %s", s, es_last_error());
    return n;
}

static bool roundtrip(const es_vocab *v, const char *s, bool parse_special) {
    int32_t ids[MAX_TOK];
    int n = tok(v, s, false, parse_special, ids);
    char *back = NULL;
    size_t len = 0;
    if (es_detokenize(v, ids, n, false, &back, &len) != ES_OK) return false;
    bool ok = len == strlen(s) && !memcmp(back, s, len);
    if (!ok) fprintf(stderr, "  round trip: '%s' -> '%s'\n", s, back);
    free(back);
    return ok;
}

static void test_specials(void) {
    int32_t ids[MAX_TOK];
    es_vocab *q = load_vocab("vocab/ggml-vocab-qwen2.gguf");
    if (q) {
        const char *chat = "<|im_start|>user\nhi<|im_end|>\n";
        int n = tok(q, chat, false, true, ids);
        CHECK(n >= 5 && ids[0] == 151644 && ids[n - 2] == 151645,
              "qwen2 parse_special: %d ids, first %d", n, ids[0]);
        CHECK(n == 6 && ids[1] == 872 && ids[2] == 198 && ids[5] == 198,
              "qwen2 chat ids: n=%d %d %d %d", n, ids[1], ids[2], ids[4]);
        n = tok(q, chat, false, false, ids);
        bool none = true;
        for (int i = 0; i < n; i++)
            none &= ids[i] < 151643;
        CHECK(none && n > 10, "qwen2 without parse_special keeps <|im_start|> as text (%d ids)", n);
        CHECK(roundtrip(q, chat, true) && roundtrip(q, chat, false), "qwen2 chat round trip");
        CHECK(es_vocab_is_eog(q, 151645) && es_vocab_is_eog(q, 151643) &&
                  !es_vocab_is_eog(q, 151644),
              "qwen2 eog");
        CHECK(es_vocab_eot(q) == 151645 && es_vocab_eos(q) == 151643, "qwen2 eot %d eos %d",
              es_vocab_eot(q), es_vocab_eos(q));
        CHECK(es_vocab_is_control(q, 151644) && !es_vocab_is_control(q, 872), "qwen2 control");
        n = tok(q, "Hello", true, false, ids);
        CHECK(n == 1 && ids[0] == 9707, "qwen2 adds no BOS: n=%d id=%d", n, ids[0]);
        char piece[64];
        CHECK(es_token_to_piece(q, 151644, piece, sizeof piece, false) == 0, "control hidden");
        int32_t k = es_token_to_piece(q, 151644, piece, sizeof piece, true);
        CHECK(k == 12 && !memcmp(piece, "<|im_start|>", 12), "control rendered");
        CHECK(es_token_to_piece(q, 151644, piece, 3, true) == -12,
              "piece cap too small -> -needed");
        k = es_token_to_piece(q, 198, piece, sizeof piece, false);
        CHECK(k == 1 && piece[0] == '\n', "qwen2 'Ċ' decodes to newline");
        CHECK(es_vocab_find_token(q, "<|im_end|>") == 151645, "find_token");
        CHECK(!strcmp(es_vocab_token_text(q, 198), "\xC4\x8A"), "token_text is stored text");
        /* invalid UTF-8 round-trips through byte-level BPE */
        const char bad[] = "a\xff\xfe b\xc3 \xe2\x82 ok";
        n = tok(q, bad, false, false, ids);
        char *back = NULL;
        size_t len = 0;
        CHECK(es_detokenize(q, ids, n, true, &back, &len) == ES_OK && len == strlen(bad) &&
                  !memcmp(back, bad, len),
              "qwen2 invalid UTF-8 round trip");
        free(back);
        es_vocab_free(q);
    }

    es_vocab *l3 = load_vocab("vocab/ggml-vocab-llama-bpe.gguf");
    if (l3) {
        int n = tok(l3, "<|begin_of_text|>Hi<|eot_id|>", true, true, ids);
        CHECK(n == 4 && ids[0] == 128000 && ids[1] == 128000 && ids[3] == 128009,
              "llama3 specials n=%d", n);
        CHECK(es_vocab_bos(l3) == 128000 && es_vocab_add_bos(l3), "llama3 bos");
        CHECK(es_vocab_is_eog(l3, 128009) && es_vocab_is_eog(l3, 128001), "llama3 eog");
        es_vocab_free(l3);
    }

    es_vocab *p3 = load_vocab("vocab/ggml-vocab-phi-3.gguf");
    if (p3) {
        CHECK(es_vocab_is_eog(p3, 32007) && es_vocab_is_eog(p3, 32000) && es_vocab_eot(p3) == 32007,
              "phi-3 eog");
        /* rstrip: the newline after <|user|> is swallowed; the text after a special gets the dummy
         * prefix */
        int n = tok(p3, "<|user|>\nHello<|end|>\n<|assistant|>", true, true, ids);
        CHECK(n == 5 && ids[0] == 1 && ids[1] == 32010 && ids[2] == 15043 && ids[3] == 32007 &&
                  ids[4] == 32001,
              "phi-3 chat n=%d ids %d %d %d %d %d", n, ids[0], ids[1], ids[2], ids[3], ids[4]);
        es_vocab_free(p3);
    }

    es_vocab *s = load_vocab("vocab/ggml-vocab-llama-spm.gguf");
    if (s) {
        int n = tok(s, "Hello world", true, false, ids);
        CHECK(n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186, "llama-spm with BOS");
        n = tok(s, "<s>Hi</s>", false, true, ids);
        CHECK(n >= 3 && ids[0] == 1 && ids[n - 1] == 2, "llama-spm parse_special <s> </s>");
        CHECK(roundtrip(s, "<s> Hi</s> there", true), "llama-spm specials round trip");
        n = tok(s, "<s>", false, false, ids);
        CHECK(n > 1, "llama-spm <s> as text is not BOS (%d ids)", n);
        char piece[16];
        CHECK(es_token_to_piece(s, 15043, piece, sizeof piece, false) == 6 &&
                  !memcmp(piece, " Hello", 6),
              "spm piece ▁ -> space");
        CHECK(es_token_to_piece(s, 13, piece, sizeof piece, false) == 1 && piece[0] == '\n',
              "spm <0x0A> -> byte");
        CHECK(es_token_to_piece(s, 1, piece, sizeof piece, false) == 0, "BOS hidden");
        CHECK(es_token_to_piece(s, 1, piece, sizeof piece, true) == 3, "BOS rendered");
        CHECK(es_token_to_piece(s, 99999, piece, sizeof piece, true) == 0, "piece of bad id");
        CHECK(es_vocab_eot(s) == -1 && es_vocab_is_eog(s, 2) && !es_vocab_is_eog(s, 1),
              "llama-spm eog");
        /* cap too small */
        int32_t small[2], need = 0;
        es_status st = es_tokenize(s, "Hello world again", 17, true, false, small, 2, &need);
        CHECK(st == ES_ERR_RANGE && need == 4, "ES_ERR_RANGE with needed count: st=%d need=%d", st,
              need);
        /* streaming: the 4 byte tokens of 😁 come out as one character */
        n = tok(s, "a😁b", false, false, ids);
        es_detok_stream *ds = NULL;
        CHECK(es_detok_stream_create(s, false, &ds) == ES_OK, "stream create");
        char out[64];
        size_t total = 0;
        int emitted_partial = 0;
        for (int i = 0; i < n; i++) {
            size_t k = es_detok_stream_push(ds, ids[i], out + total, sizeof out - total);
            if (k > 0 && k < 4 && (unsigned char)out[total] >= 0x80) emitted_partial++;
            total += k;
        }
        total += es_detok_stream_flush(ds, out + total, sizeof out - total);
        CHECK(total == 7 &&
                  !memcmp(out,
                          " a\xF0\x9F\x98\x81"
                          "b",
                          7) &&
                  !emitted_partial,
              "stream: %zu bytes", total);
        /* a piece larger than cap is delivered in parts, never half a character */
        es_detok_stream_push(ds, 15043, out, 0);
        size_t k1 = es_detok_stream_push(ds, -5, out, 4);
        size_t k2 = es_detok_stream_flush(ds, out + k1, sizeof out - k1);
        CHECK(k1 == 4 && k2 == 2 && !memcmp(out, " Hello", 6), "stream partial %zu + %zu", k1, k2);
        es_detok_stream_free(ds);
        int32_t badtok[1] = {40000};
        char *o = NULL;
        size_t ol;
        CHECK(es_detokenize(s, badtok, 1, true, &o, &ol) == ES_ERR_RANGE, "detokenize bad id");
        es_vocab_free(s);
    }

    es_vocab *g = load_vocab("fixtures/gemma.f16.gguf");
    if (g) {
        CHECK(es_vocab_n_tokens(g) == 512 && es_vocab_eot(g) == 107 && es_vocab_is_eog(g, 107),
              "gemma fixture vocab");
        CHECK(roundtrip(g, "Hello world, no dummy prefix here.", false),
              "gemma fixture round trip");
        es_vocab_free(g);
    }
}

static void test_errors(void) {
    es_vocab *v = NULL;
    CHECK(es_vocab_load("/nonexistent/x.gguf", &v) == ES_ERR_IO && !v, "missing file -> ES_ERR_IO");
    es_status st = es_vocab_load(es_test_shared_path("fixtures/llama.ref.gguf"), &v);
    CHECK(st == ES_ERR_NOT_FOUND && !v, "GGUF without tokenizer -> ES_ERR_NOT_FOUND (%d: %s)", st,
          es_last_error());
    CHECK(es_vocab_load(NULL, &v) == ES_ERR_INVALID_ARG, "NULL path");
    CHECK(es_tokenize(NULL, "x", 1, false, false, NULL, 0, NULL) == ES_ERR_INVALID_ARG,
          "NULL vocab");
}

/* Writes a vocab-only GGUF: model, tokens (and optionally types, scores, merges). */
static const char *write_vocab(const char *model, const char *const *toks, int n,
                               const int32_t *types, const float *scores, int n_scores,
                               const char *const *merges, int n_merges, const char *extra_key,
                               int32_t extra_val) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/es_test_tokenizer_%d.gguf", (int)getpid());
    es_gguf_writer *w = es_gguf_writer_new();
    es_gguf_writer_set_str(w, "general.architecture", "llama");
    es_gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (toks) es_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    if (types)
        es_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ES_GGUF_INT32, types, (uint64_t)n);
    if (scores)
        es_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ES_GGUF_FLOAT32, scores,
                               (uint64_t)n_scores);
    if (merges) es_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)n_merges);
    if (extra_key) es_gguf_writer_set_i32(w, extra_key, extra_val);
    es_status st = es_gguf_writer_write(w, path);
    es_gguf_writer_free(w);
    CHECK(st == ES_OK, "write test vocab: %s", es_last_error());
    return path;
}

static void test_bad_metadata(void) {
    static const char *const spm_toks[] = {"<unk>",
                                           "<s>",
                                           "</s>",
                                           "\xE2\x96\x81",
                                           "a",
                                           "b",
                                           "\xE2\x96\x81"
                                           "a",
                                           "ab"};
    const int32_t spm_types[] = {2, 3, 3, 1, 1, 1, 1, 1};
    const float spm_scores[] = {0, 0, 0, -1, -2, -3, -4, -5};
    es_vocab *v = NULL;
    es_status st;

    st = es_vocab_load(write_vocab("t5", spm_toks, 8, NULL, NULL, 0, NULL, 0, NULL, 0), &v);
    CHECK(st == ES_ERR_UNSUPPORTED && !v, "model 't5' (Unigram) -> ES_ERR_UNSUPPORTED (%d: %s)", st,
          es_last_error());
    st = es_vocab_load(write_vocab("llama", NULL, 0, NULL, NULL, 0, NULL, 0, NULL, 0), &v);
    CHECK(st == ES_ERR_FORMAT && !v, "no tokens -> ES_ERR_FORMAT (%d: %s)", st, es_last_error());
    const int32_t bad_types[] = {2, 3, 3, 1, 1, 9, 1, 1};
    st = es_vocab_load(write_vocab("llama", spm_toks, 8, bad_types, NULL, 0, NULL, 0, NULL, 0), &v);
    CHECK(st == ES_ERR_FORMAT && !v, "token type 9 -> ES_ERR_FORMAT (%d: %s)", st, es_last_error());
    st = es_vocab_load(
        write_vocab("llama", spm_toks, 8, spm_types, spm_scores, 5, NULL, 0, NULL, 0), &v);
    CHECK(st == ES_ERR_FORMAT && !v, "5 scores for 8 tokens -> ES_ERR_FORMAT (%d: %s)", st,
          es_last_error());

    /* a BOS id outside the vocabulary is a broken file, said so; -1 means none */
    st = es_vocab_load(write_vocab("llama", spm_toks, 8, spm_types, spm_scores, 8, NULL, 0,
                                   "tokenizer.ggml.bos_token_id", 99),
                       &v);
    CHECK(st == ES_ERR_FORMAT && !v && strstr(es_last_error(), "bos_token_id = 99") &&
              strstr(es_last_error(), "outside the vocabulary of 8"),
          "bos 99 of 8 tokens -> ES_ERR_FORMAT naming the key (%d: %s)", st, es_last_error());
    /* a tiny SPM vocab without byte tokens: unknown characters become <unk> */
    st = es_vocab_load(write_vocab("llama", spm_toks, 8, spm_types, spm_scores, 8, NULL, 0,
                                   "tokenizer.ggml.bos_token_id", -1),
                       &v);
    CHECK(st == ES_OK, "tiny spm vocab: %s", es_last_error());
    if (v) {
        int32_t ids[16], n = 0;
        CHECK(es_vocab_bos(v) == -1, "bos -1 -> none");
        st = es_tokenize(v, "ab a\xC3\xA9", 6, true, false, ids, 16, &n);
        /* "▁ab▁aé": ▁a (score -4) wins over ab (-5); then b; ▁a; é unknown */
        CHECK(st == ES_OK && n == 4 && ids[0] == 6 && ids[1] == 5 && ids[2] == 6 && ids[3] == 0,
              "tiny spm ids: n=%d %d %d %d %d", n, ids[0], ids[1], ids[2], ids[3]);
        es_vocab_free(v);
        v = NULL;
    }

    /* byte-level BPE: merges must be 'left right' and present */
    static const char *const bpe_toks[] = {"h",  "e",    "l",     "o",       "he",
                                           "ll", "hell", "hello", "\xC4\xA0"};
    static const char *const good_merges[] = {"h e", "l l", "he ll", "hell o"};
    static const char *const bad_merges[] = {"h e", "ll"};
    st = es_vocab_load(write_vocab("gpt2", bpe_toks, 9, NULL, NULL, 0, NULL, 0, NULL, 0), &v);
    CHECK(st == ES_ERR_FORMAT && !v, "gpt2 without merges -> ES_ERR_FORMAT (%d: %s)", st,
          es_last_error());
    st = es_vocab_load(write_vocab("gpt2", bpe_toks, 9, NULL, NULL, 0, bad_merges, 2, NULL, 0), &v);
    CHECK(st == ES_ERR_FORMAT && !v, "merge 'll' -> ES_ERR_FORMAT (%d: %s)", st, es_last_error());
    st =
        es_vocab_load(write_vocab("gpt2", bpe_toks, 9, NULL, NULL, 0, good_merges, 4, NULL, 0), &v);
    CHECK(st == ES_OK, "tiny gpt2 vocab: %s", es_last_error());
    if (v) {
        int32_t ids[16], n = 0;
        st = es_tokenize(v, "hello hel", 9, true, false, ids, 16, &n);
        /* "hello", " " (Ġ, no merge with h), "he", "l"; no BOS (unknown pre, no bos id) */
        CHECK(st == ES_OK && n == 4 && ids[0] == 7 && ids[1] == 8 && ids[2] == 4 && ids[3] == 2,
              "tiny gpt2 ids: n=%d %d %d %d %d", n, ids[0], ids[1], ids[2], ids[3]);
        es_vocab_free(v);
    }
    unlink(write_vocab("llama", NULL, 0, NULL, NULL, 0, NULL, 0, NULL, 0));
}

static void test_demo(void) {
    es_vocab *v = load_vocab("models/demo-16m.f16.gguf");
    if (!v) return;
    int32_t ids[MAX_TOK];
    CHECK(es_vocab_bos(v) == 1 && es_vocab_eos(v) == 2 && es_vocab_n_tokens(v) == 8192,
          "demo bos/eos/n");
    int n = tok(v, "Hello world", true, false, ids);
    CHECK(n >= 2 && ids[0] == 1, "demo BOS first");
    CHECK(roundtrip(v, "Hello world", false), "demo Hello world round trip");
    CHECK(
        roundtrip(v, "  two spaces, digits 12345 and \xC3\xA9t\xC3\xA9 \xE2\x9C\x85\n\ttab", false),
        "demo mixed round trip");
    /* digits are split one by one */
    n = tok(v, "2024", false, false, ids);
    char piece[16];
    bool single = true;
    for (int i = 0; i < n; i++) {
        int k = es_token_to_piece(v, ids[i], piece, sizeof piece, false);
        int digits = 0;
        for (int j = 0; j < k; j++)
            digits += piece[j] >= '0' && piece[j] <= '9';
        single &= digits <= 1;
    }
    CHECK(single, "demo digits split");

    /* speed and round trip on the 600 KB corpus */
    size_t len = 0;
    char *corpus = es_test_read_file(es_test_shared_path("data/corpus-valid.txt"), &len);
    CHECK(corpus != NULL, "read corpus");
    if (corpus) {
        int32_t cap = (int32_t)len + 16;
        int32_t *big = malloc((size_t)cap * sizeof(int32_t));
        double t0 = now_s();
        int32_t nb = 0;
        es_status st = es_tokenize(v, corpus, len, true, false, big, cap, &nb);
        double dt = now_s() - t0;
        printf("demo vocab: %zu bytes -> %d tokens in %.3f s\n", len, nb, dt);
        CHECK(st == ES_OK, "tokenize corpus");
#if defined(__SANITIZE_ADDRESS__)
        const double limit = 5.0;
#else
        const double limit = 1.0;
#endif
        CHECK(dt < limit, "corpus tokenizes in %.3f s (limit %.1f)", dt, limit);
        char *back = NULL;
        size_t blen = 0;
        CHECK(st == ES_OK && es_detokenize(v, big, nb, true, &back, &blen) == ES_OK &&
                  blen == len && !memcmp(back, corpus, len),
              "corpus round trip");
        free(back);
        free(big);

        es_vocab *q = load_vocab("vocab/ggml-vocab-qwen2.gguf");
        if (q) {
            big = malloc((size_t)cap * sizeof(int32_t));
            t0 = now_s();
            st = es_tokenize(q, corpus, len, false, false, big, cap, &nb);
            dt = now_s() - t0;
            printf("qwen2 vocab: %zu bytes -> %d tokens in %.3f s\n", len, nb, dt);
            CHECK(st == ES_OK && dt < 2 * limit, "qwen2 corpus in %.3f s", dt);
            back = NULL;
            CHECK(st == ES_OK && es_detokenize(q, big, nb, true, &back, &blen) == ES_OK &&
                      blen == len && !memcmp(back, corpus, len),
                  "qwen2 corpus round trip");
            free(back);
            free(big);
            es_vocab_free(q);
        }
        free(corpus);
    }
    es_vocab_free(v);
}

/* Byte-fallback tokens that form no valid UTF-8 come out of the stream as U+FFFD:
 * generated text is always valid UTF-8. */
static void test_stream_invalid_utf8(void) {
    es_vocab *v = load_vocab("vocab/ggml-vocab-llama-spm.gguf");
    if (!v) return;
    static const struct {
        const char *bytes[4];
        const char *want;
    } cases[] = {
        {{"<0xE2>", "<0x28>", NULL}, "\xEF\xBF\xBD("},            /* lead + ASCII */
        {{"<0x80>", NULL}, "\xEF\xBF\xBD"},                       /* stray continuation */
        {{"<0xE2>", "<0x82>", "<0xAC>", NULL}, "\xE2\x82\xAC"},   /* a valid euro sign */
        {{"<0xC0>", "<0xAF>", NULL}, "\xEF\xBF\xBD\xEF\xBF\xBD"}, /* overlong */
        {{"<0xF0>", "<0x9F>", NULL}, "\xEF\xBF\xBD\xEF\xBF\xBD"}, /* cut short at the end */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        es_detok_stream *s = NULL;
        CHECK(es_detok_stream_create(v, false, &s) == ES_OK, "stream create");
        if (!s) break;
        char out[64];
        size_t n = 0;
        for (int i = 0; cases[c].bytes[i]; i++) {
            int32_t id = es_vocab_find_token(v, cases[c].bytes[i]);
            CHECK(id >= 0, "byte token %s", cases[c].bytes[i]);
            n += es_detok_stream_push(s, id, out + n, sizeof out - n);
        }
        size_t k;
        while ((k = es_detok_stream_flush(s, out + n, sizeof out - n)) > 0)
            n += k;
        CHECK(n == strlen(cases[c].want) && memcmp(out, cases[c].want, n) == 0,
              "invalid UTF-8 case %zu: got %zu bytes, want %zu", c, n, strlen(cases[c].want));
        CHECK(valid_utf8(out, n), "invalid UTF-8 case %zu: the output is valid UTF-8", c);
        es_detok_stream_free(s);
    }
    es_vocab_free(v);
}

int main(void) {
    if (!es_test_shared()) {
        printf("no shared data folder: skipped\n");
        return ES_TEST_SKIP;
    }
    static const struct {
        const char *name;
        bool roundtrip;
    } vocabs[] = {{"llama-spm", true}, {"llama-bpe", true}, {"qwen2", true},
                  {"gpt-2", true},     {"phi-3", true},     {"bert-bge", false}};
    double t0 = now_s();
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++)
        conformance(vocabs[i].name, vocabs[i].roundtrip);
    printf("conformance: %.2f s\n", now_s() - t0);
    test_specials();
    test_errors();
    test_bad_metadata();
    test_demo();
    test_stream_invalid_utf8();
    return es_test_finish();
}
