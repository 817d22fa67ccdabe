/*
 * test_gguf.c — the GGUF reader and writer: real files from ../shared (values checked
 * against what their headers hold), writer round trips, hand-built nested arrays, and
 * a catalogue of malformed files that must fail with a telling message.
 */
#include "common.h"
#include "gguf.h"
#include "testutil.h"
#include "types.h"

#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* helpers                                                                   */
/* ------------------------------------------------------------------------- */

static bool str_eq(es_gguf_str s, const char *want) {
    return s.ptr && s.len == strlen(want) && !memcmp(s.ptr, want, s.len);
}

static bool msg_has(const char *word) {
    return strstr(es_last_error(), word) != NULL;
}

/* A growable byte buffer for building GGUF images by hand. */
typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void b_put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void b_u8(bytes *b, uint8_t v) {
    b_put(b, &v, 1);
}
static void b_u32(bytes *b, uint32_t v) {
    b_put(b, &v, 4);
} /* x86: little-endian */
static void b_u64(bytes *b, uint64_t v) {
    b_put(b, &v, 8);
}
static void b_str(bytes *b, const char *s) {
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_header(bytes *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_put(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(bytes *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, ES_GGUF_UINT32);
    b_u32(b, v);
}
static void b_tensor(bytes *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t offset) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        b_u64(b, ne[d]);
    b_u32(b, type);
    b_u64(b, offset);
}
static void b_pad(bytes *b, size_t a) {
    while (b->n % a)
        b_u8(b, 0);
}
static void b_zeros(bytes *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        b_u8(b, 0);
}

/* Opens an exact-size heap copy (so ASan sees any over-read). */
static es_status open_copy(const uint8_t *p, size_t n, es_gguf **g, uint8_t **keep) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    es_status st = es_gguf_open_memory(copy, n, g);
    if (st) {
        free(copy);
        *keep = NULL;
    } else {
        *keep = copy;
    }
    return st;
}

/* Expects the image to fail with status want and a message containing word. */
static void expect_bad(const char *what, const bytes *b, es_status want, const char *word) {
    es_gguf *g = NULL;
    uint8_t *keep = NULL;
    es_status st = open_copy(b->p, b->n, &g, &keep);
    CHECK(st == want, "%s: status %d (%s), want %d; msg '%s'", what, st, es_status_str(st), want,
          es_last_error());
    CHECK(msg_has(word), "%s: message '%s' lacks '%s'", what, es_last_error(), word);
    printf("  %-28s -> %s\n", what, es_last_error());
    es_gguf_close(g);
    free(keep);
}

/* Walks everything a consumer could touch; returns a checksum so nothing is elided. */
static uint64_t walk(const es_gguf *g) {
    uint64_t sum = 0;
    for (int64_t i = 0; i < es_gguf_n_kv(g); i++) {
        es_gguf_str k = es_gguf_key(g, i);
        char key[512];
        if (k.len >= sizeof key) continue;
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        CHECK(es_gguf_find_key(g, key) == i, "find_key('%s') == %lld", key, (long long)i);
        es_gguf_vtype t = es_gguf_kv_type(g, i);
        if (t == ES_GGUF_ARRAY) {
            es_gguf_vtype et;
            uint64_t n;
            CHECK(es_gguf_get_arr(g, key, &et, &n) == ES_OK, "get_arr %s", key);
            if (et == ES_GGUF_STRING)
                for (uint64_t j = 0; j < n; j++)
                    sum += es_gguf_arr_str(g, key, j).len;
        } else if (t == ES_GGUF_STRING) {
            es_gguf_str s;
            CHECK(es_gguf_get_str(g, key, &s) == ES_OK, "get_str %s", key);
            sum += s.len;
        }
    }
    for (int64_t i = 0; i < es_gguf_n_tensors(g); i++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(g, i);
        CHECK(es_gguf_find_tensor(g, t->name) == t, "find_tensor(%s)", t->name);
        const uint8_t *d = t->data;
        sum += d[0] + d[t->nbytes - 1];
        CHECK(t->nbytes ==
                  es_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]),
              "%s nbytes", t->name);
    }
    return sum;
}

/* ------------------------------------------------------------------------- */
/* real files                                                                */
/* ------------------------------------------------------------------------- */

static void test_all_shared_files(void) {
    static const char *const patterns[] = {"fixtures/*.gguf", "fixtures/quant/*.gguf",
                                           "vocab/*.gguf", "models/*.gguf"};
    int n_files = 0;
    for (size_t p = 0; p < ES_ARRAY_LEN(patterns); p++) {
        glob_t gl;
        if (glob(es_test_shared_path(patterns[p]), 0, NULL, &gl) != 0) continue;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            es_gguf *g = NULL;
            double t0 = es_time_s();
            es_status st = es_gguf_open(gl.gl_pathv[i], &g);
            double ms = 1e3 * (es_time_s() - t0);
            if (!CHECK(st == ES_OK, "open %s: %s", gl.gl_pathv[i], es_last_error())) continue;
            CHECK(es_gguf_version(g) == 3, "%s version %u", gl.gl_pathv[i], es_gguf_version(g));
            CHECK(es_gguf_n_kv(g) > 0, "%s has keys", gl.gl_pathv[i]);
            CHECK(!strcmp(es_gguf_path(g), gl.gl_pathv[i]), "path");
            walk(g);
            if (strstr(gl.gl_pathv[i], "models/"))
                printf("open %s: %.2f ms (%lld tensors)\n", gl.gl_pathv[i], ms,
                       (long long)es_gguf_n_tensors(g));
            es_gguf_close(g);
            n_files++;
        }
        globfree(&gl);
    }
    CHECK(n_files >= 40, "read %d shared GGUF files", n_files);
    printf("read and walked %d shared GGUF files\n", n_files);
}

/* Compares a tensor's mapped bytes with the file read independently (data section at
 * data_off, which the test computed from the header layout). */
static void check_tensor_bytes(const char *path, const es_gguf_tensor *t, size_t data_off) {
    size_t len = 0;
    char *file = es_test_read_file(path, &len);
    if (!CHECK(file != NULL, "read %s", path)) return;
    CHECK(data_off + t->offset + t->nbytes <= len &&
              !memcmp(file + data_off + t->offset, t->data, t->nbytes),
          "%s: tensor %s bytes equal the file at %zu", path, t->name,
          (size_t)(data_off + t->offset));
    free(file);
}

static void test_llama_f16(void) {
    const char *path = es_test_shared_path("fixtures/llama.f16.gguf");
    es_gguf *g = NULL;
    if (!CHECK(es_gguf_open(path, &g) == ES_OK, "open: %s", es_last_error())) return;
    CHECK(es_gguf_alignment(g) == 32, "alignment");
    CHECK(es_gguf_n_kv(g) == 26 && es_gguf_n_tensors(g) == 30, "counts %lld %lld",
          (long long)es_gguf_n_kv(g), (long long)es_gguf_n_tensors(g));
    es_gguf_str s;
    CHECK(es_gguf_get_str(g, "general.architecture", &s) == ES_OK && str_eq(s, "llama"), "arch");
    char *name = es_gguf_get_str_dup(g, "general.name");
    CHECK(name && !strcmp(name, "Llama"), "general.name '%s'", name ? name : "(null)");
    free(name);
    CHECK(es_gguf_get_str_dup(g, "llama.block_count") == NULL, "str_dup of a u32 is NULL");
    uint32_t u = 0;
    CHECK(es_gguf_get_u32(g, "llama.block_count", &u) == ES_OK && u == 3, "block_count %u", u);
    CHECK(es_gguf_get_u32(g, "llama.embedding_length", &u) == ES_OK && u == 256, "n_embd %u", u);
    CHECK(es_gguf_get_u32(g, "llama.attention.head_count_kv", &u) == ES_OK && u == 2, "n_kv_head");
    int64_t i64 = 0;
    CHECK(es_gguf_get_i64(g, "llama.context_length", &i64) == ES_OK && i64 == 4096, "ctx %lld",
          (long long)i64);
    float f = 0;
    CHECK(es_gguf_get_f32(g, "llama.rope.freq_base", &f) == ES_OK && f == 10000.0f, "freq_base %g",
          f);
    CHECK(es_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) == ES_OK && f == 1e-5f,
          "rms eps %g", f);
    CHECK(es_gguf_get_f32(g, "llama.block_count", &f) == ES_ERR_FORMAT && msg_has("u32") &&
              msg_has("llama.block_count"),
          "f32 of u32: %s", es_last_error());
    CHECK(es_gguf_get_u32(g, "no.such.key", &u) == ES_ERR_NOT_FOUND && msg_has("no.such.key"),
          "missing key: %s", es_last_error());
    CHECK(es_gguf_find_key(g, "no.such.key") == -1, "find_key missing");
    es_gguf_vtype et;
    uint64_t n = 0;
    CHECK(es_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n) == ES_OK && et == ES_GGUF_STRING &&
              n == 512,
          "tokens: type %d n %llu", et, (unsigned long long)n);
    CHECK(str_eq(es_gguf_arr_str(g, "tokenizer.ggml.tokens", 0), "<unk>") &&
              str_eq(es_gguf_arr_str(g, "tokenizer.ggml.tokens", 1), "<s>") &&
              str_eq(es_gguf_arr_str(g, "tokenizer.ggml.tokens", 2), "</s>"),
          "first tokens");
    CHECK(es_gguf_arr_str(g, "tokenizer.ggml.tokens", 512).ptr == NULL, "token 512 out of range");
    CHECK(es_gguf_arr_data(g, "tokenizer.ggml.tokens") == NULL, "arr_data of strings is NULL");
    CHECK(es_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n) == ES_OK && et == ES_GGUF_FLOAT32 &&
              n == 512,
          "scores");
    int32_t tt[512];
    float ttf[512];
    CHECK(es_gguf_arr_to_i32(g, "tokenizer.ggml.token_type", tt, 512) == ES_OK && tt[0] == 2 &&
              tt[1] == 3 && tt[2] == 3,
          "token_type %d %d %d", tt[0], tt[1], tt[2]);
    CHECK(es_gguf_arr_to_f32(g, "tokenizer.ggml.token_type", ttf, 512) == ES_OK && ttf[0] == 2.0f,
          "token_type as f32");
    CHECK(es_gguf_arr_to_i32(g, "tokenizer.ggml.token_type", tt, 511) == ES_ERR_FORMAT &&
              msg_has("512"),
          "wrong count: %s", es_last_error());
    const es_gguf_tensor *t = es_gguf_find_tensor(g, "token_embd.weight");
    if (CHECK(t != NULL, "token_embd.weight")) {
        CHECK(t->type == ES_TYPE_F16 && t->n_dims == 2 && t->ne[0] == 256 && t->ne[1] == 512 &&
                  t->ne[2] == 1 && t->ne[3] == 1,
              "token_embd type %d shape [%lld,%lld]", t->type, (long long)t->ne[0],
              (long long)t->ne[1]);
        CHECK(t->offset == 262144 && t->nbytes == 262144, "token_embd offset %llu nbytes %zu",
              (unsigned long long)t->offset, t->nbytes);
        check_tensor_bytes(path, t, 13344); /* infos end at 13314, aligned up to 32 */
    }
    t = es_gguf_tensor_at(g, 0);
    CHECK(t && !strcmp(t->name, "output.weight") && t->offset == 0, "first tensor output.weight");
    t = es_gguf_find_tensor(g, "blk.0.attn_norm.weight");
    CHECK(t && t->type == ES_TYPE_F32 && t->n_dims == 1 && t->ne[0] == 256 && t->nbytes == 1024,
          "attn_norm");
    t = es_gguf_find_tensor(g, "output_norm.weight");
    if (CHECK(t != NULL, "output_norm")) check_tensor_bytes(path, t, 13344);
    CHECK(es_gguf_find_tensor(g, "blk.3.attn_q.weight") == NULL, "no blk.3");
    CHECK(es_gguf_tensor_at(g, 30) == NULL && es_gguf_tensor_at(g, -1) == NULL, "tensor_at range");
    es_gguf_close(g);
}

static void test_llama_ref(void) {
    es_gguf *g = NULL;
    if (!CHECK(es_gguf_open(es_test_shared_path("fixtures/llama.ref.gguf"), &g) == ES_OK,
               "open: %s", es_last_error()))
        return;
    CHECK(es_gguf_n_tensors(g) == 18, "ref tensors %lld", (long long)es_gguf_n_tensors(g));
    es_gguf_str s;
    CHECK(es_gguf_get_str(g, "reference.arch", &s) == ES_OK && str_eq(s, "llama"),
          "reference.arch");
    float a1 = 0;
    CHECK(es_gguf_get_f32(g, "reference.a1", &a1) == ES_OK && fabsf(a1 - 61.461468f) < 1e-4f,
          "a1 %g", a1);
    const es_gguf_tensor *t = es_gguf_find_tensor(g, "logits");
    if (CHECK(t != NULL, "logits"))
        CHECK(t->type == ES_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 512 && t->ne[1] == 40 &&
                  t->nbytes == 512 * 40 * 4 && t->offset == 160,
              "logits type %d [%lld,%lld] off %llu", t->type, (long long)t->ne[0],
              (long long)t->ne[1], (unsigned long long)t->offset);
    t = es_gguf_find_tensor(g, "tokens");
    if (CHECK(t != NULL, "tokens")) {
        CHECK(t->type == ES_TYPE_I32 && t->ne[0] == 40 && t->nbytes == 160, "tokens I32 [40]");
        int32_t first;
        memcpy(&first, t->data, 4);
        CHECK(first == 1, "token 0 is BOS = 1, got %d", first);
    }
    t = es_gguf_find_tensor(g, "gen_steer");
    CHECK(t && t->type == ES_TYPE_I32 && t->ne[0] == 16, "gen_steer");
    es_gguf_close(g);
}

static void test_quant(void) {
    static const struct {
        const char *file;
        int embd_type;
        uint32_t file_type;
    } q[] = {
        {"fixtures/quant/llama.Q8_0.gguf", ES_TYPE_Q8_0, 7},
        {"fixtures/quant/llama.Q4_0.gguf", ES_TYPE_Q4_0, 2},
        {"fixtures/quant/llama.Q4_K_M.gguf", ES_TYPE_Q4_K, 15},
    };
    for (size_t i = 0; i < ES_ARRAY_LEN(q); i++) {
        es_gguf *g = NULL;
        if (!CHECK(es_gguf_open(es_test_shared_path(q[i].file), &g) == ES_OK, "open %s: %s",
                   q[i].file, es_last_error()))
            continue;
        uint32_t ft = 0;
        CHECK(es_gguf_get_u32(g, "general.file_type", &ft) == ES_OK && ft == q[i].file_type,
              "%s file_type %u", q[i].file, ft);
        const es_gguf_tensor *t = es_gguf_find_tensor(g, "token_embd.weight");
        const es_type_traits *tr = es_type_get(q[i].embd_type);
        if (CHECK(t && tr, "%s token_embd", q[i].file))
            CHECK((int)t->type == q[i].embd_type && t->ne[0] == 256 && t->ne[1] == 512 &&
                      t->nbytes == 512 * (256 / (size_t)tr->block_size) * tr->type_size,
                  "%s token_embd %s nbytes %zu", q[i].file, es_type_name(t->type), t->nbytes);
        t = es_gguf_find_tensor(g, "output.weight");
        CHECK(t && t->type == (q[i].embd_type == ES_TYPE_Q8_0 ? ES_TYPE_Q8_0 : ES_TYPE_Q6_K),
              "%s output.weight type %s", q[i].file, t ? es_type_name(t->type) : "-");
        t = es_gguf_find_tensor(g, "output_norm.weight");
        CHECK(t && t->type == ES_TYPE_F32, "%s output_norm F32", q[i].file);
        es_gguf_close(g);
    }
    /* Q4_K_M: token_embd at offset 108544, 73728 bytes (512 rows x 144) */
    es_gguf *g = NULL;
    const char *path = es_test_shared_path("fixtures/quant/llama.Q4_K_M.gguf");
    if (es_gguf_open(path, &g) == ES_OK) {
        const es_gguf_tensor *t = es_gguf_find_tensor(g, "token_embd.weight");
        CHECK(t && t->offset == 108544 && t->nbytes == 73728, "Q4_K token_embd extent");
        if (t) check_tensor_bytes(path, t, 13344);
        es_gguf_close(g);
    }
}

static void test_vocab(void) {
    es_gguf *g = NULL;
    if (!CHECK(es_gguf_open(es_test_shared_path("vocab/ggml-vocab-gpt-2.gguf"), &g) == ES_OK,
               "open gpt-2 vocab: %s", es_last_error()))
        return;
    CHECK(es_gguf_n_tensors(g) == 0 && es_gguf_n_kv(g) == 16, "gpt-2 counts");
    es_gguf_vtype et;
    uint64_t n = 0;
    CHECK(es_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n) == ES_OK && n == 50257,
          "tokens %llu", (unsigned long long)n);
    CHECK(str_eq(es_gguf_arr_str(g, "tokenizer.ggml.tokens", 0), "!"), "token 0");
    CHECK(str_eq(es_gguf_arr_str(g, "tokenizer.ggml.tokens", 50256), "<|endoftext|>"),
          "token 50256");
    CHECK(es_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n) == ES_OK && n == 50000, "merges");
    CHECK(str_eq(es_gguf_arr_str(g, "tokenizer.ggml.merges", 0), "\xc4\xa0 t"), "merge 0");
    uint32_t bos = 0;
    CHECK(es_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos) == ES_OK && bos == 50256, "bos");
    /* element access is O(1): a million random lookups are quick */
    double t0 = es_time_s();
    uint64_t sum = 0, x = 12345;
    for (int i = 0; i < 1000000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        sum += es_gguf_arr_str(g, "tokenizer.ggml.tokens", (x >> 33) % 50257).len;
    }
    double ms = 1e3 * (es_time_s() - t0);
    printf("1e6 random token lookups: %.1f ms (sum %llu)\n", ms, (unsigned long long)sum);
    CHECK(ms < 5000, "string array access is O(1): %.1f ms", ms);
    es_gguf_close(g);

    /* a 30 MB model opens in milliseconds: no per-tensor copies */
    const char *model = es_test_shared_path("models/demo-16m.f16.gguf");
    if (access(model, R_OK) == 0) {
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            t0 = es_time_s();
            es_status st = es_gguf_open(model, &g);
            double dt = 1e3 * (es_time_s() - t0);
            if (!CHECK(st == ES_OK, "open demo model: %s", es_last_error())) break;
            es_gguf_close(g);
            if (dt < best) best = dt;
        }
        printf("open demo-16m.f16.gguf (31.7 MB): best %.2f ms\n", best);
        CHECK(best < 100, "opening a 30 MB model takes %.2f ms", best);
    }
}

/* ------------------------------------------------------------------------- */
/* writer round trip                                                         */
/* ------------------------------------------------------------------------- */

static char tmpdir[256];

static void fill_bytes(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

static void test_writer_round_trip(void) {
    es_gguf_writer *w = es_gguf_writer_new();
    if (!CHECK(w != NULL, "writer_new")) return;
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 65000;
    int16_t i16 = -32000;
    int64_t i64 = INT64_MIN;
    double f64 = -1.0 / 3.0;
    float fnan;
    uint32_t nanbits = 0x7fc01234;
    memcpy(&fnan, &nanbits, 4);
    CHECK(es_gguf_writer_set_u32(w, "k.first", 1) == ES_OK, "set");
    es_gguf_writer_set_val(w, "k.u8", ES_GGUF_UINT8, &u8);
    es_gguf_writer_set_val(w, "k.i8", ES_GGUF_INT8, &i8);
    es_gguf_writer_set_val(w, "k.u16", ES_GGUF_UINT16, &u16);
    es_gguf_writer_set_val(w, "k.i16", ES_GGUF_INT16, &i16);
    es_gguf_writer_set_u32(w, "k.u32", 4000000000u);
    es_gguf_writer_set_i32(w, "k.i32", -2000000000);
    es_gguf_writer_set_f32(w, "k.f32", 3.25f);
    es_gguf_writer_set_f32(w, "k.nan", fnan);
    es_gguf_writer_set_bool(w, "k.bool", true);
    es_gguf_writer_set_str(w, "k.str", "h\xc3\xa9llo");
    es_gguf_writer_set_str(w, "k.empty", "");
    es_gguf_writer_set_u64(w, "k.u64", UINT64_MAX);
    es_gguf_writer_set_val(w, "k.i64", ES_GGUF_INT64, &i64);
    es_gguf_writer_set_val(w, "k.f64", ES_GGUF_FLOAT64, &f64);
    CHECK(es_gguf_writer_set_val(w, "k.bad", ES_GGUF_STRING, "x") == ES_ERR_INVALID_ARG,
          "set_val of a string is refused");
    /* numeric arrays of every type */
    uint8_t raw[8 * 7];
    fill_bytes(raw, sizeof raw, 7);
    static const es_gguf_vtype num[] = {
        ES_GGUF_UINT8,   ES_GGUF_INT8, ES_GGUF_UINT16, ES_GGUF_INT16, ES_GGUF_UINT32, ES_GGUF_INT32,
        ES_GGUF_FLOAT32, ES_GGUF_BOOL, ES_GGUF_UINT64, ES_GGUF_INT64, ES_GGUF_FLOAT64};
    static const size_t num_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    char key[64];
    for (size_t i = 0; i < ES_ARRAY_LEN(num); i++) {
        snprintf(key, sizeof key, "arr.%d", (int)num[i]);
        CHECK(es_gguf_writer_set_arr(w, key, num[i], raw, 7) == ES_OK, "set_arr %s", key);
    }
    CHECK(es_gguf_writer_set_arr(w, "arr.none", ES_GGUF_INT32, NULL, 0) == ES_OK, "empty array");
    CHECK(es_gguf_writer_set_arr(w, "arr.bad", ES_GGUF_STRING, raw, 1) == ES_ERR_INVALID_ARG,
          "set_arr of strings refused");
    const char *strs[] = {"alpha", "", "\xe2\x96\x81gamma", "delta with spaces"};
    CHECK(es_gguf_writer_set_arr_str(w, "arr.str", strs, 4) == ES_OK, "set_arr_str");
    CHECK(es_gguf_writer_set_arr_str(w, "arr.str0", strs, 0) == ES_OK, "empty string array");
    /* a key set twice keeps its first position and its last value */
    CHECK(es_gguf_writer_set_str(w, "k.first", "replaced") == ES_OK, "reset");
    /* tensors of several types and shapes */
    static const struct {
        const char *name;
        int type, n_dims;
        int64_t ne[4];
    } ts[] = {
        {"t.f32", ES_TYPE_F32, 1, {3, 1, 1, 1}},    {"t.f16", ES_TYPE_F16, 2, {5, 3, 1, 1}},
        {"t.q8_0", ES_TYPE_Q8_0, 2, {64, 3, 1, 1}}, {"t.q4_k", ES_TYPE_Q4_K, 4, {256, 2, 1, 3}},
        {"t.i32", ES_TYPE_I32, 3, {2, 2, 2, 1}},    {"t.bf16", ES_TYPE_BF16, 1, {7, 1, 1, 1}},
    };
    uint8_t *tdata[ES_ARRAY_LEN(ts)];
    size_t tbytes[ES_ARRAY_LEN(ts)];
    for (size_t i = 0; i < ES_ARRAY_LEN(ts); i++) {
        tbytes[i] = es_row_size(ts[i].type, ts[i].ne[0]) *
                    (size_t)(ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]);
        tdata[i] = malloc(tbytes[i]);
        fill_bytes(tdata[i], tbytes[i], (uint32_t)i + 100);
        CHECK(es_gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne,
                                        tdata[i]) == ES_OK,
              "add %s: %s", ts[i].name, es_last_error());
    }
    CHECK(es_gguf_writer_add_tensor(w, "t.f32", ES_TYPE_F32, 1, ts[0].ne, tdata[0]) ==
                  ES_ERR_INVALID_ARG &&
              msg_has("duplicate"),
          "duplicate tensor refused");
    int64_t bad_ne[4] = {33, 1, 1, 1};
    CHECK(es_gguf_writer_add_tensor(w, "t.bad", ES_TYPE_Q8_0, 1, bad_ne, tdata[2]) ==
                  ES_ERR_INVALID_ARG &&
              msg_has("block size"),
          "ne0 33 for Q8_0 refused: %s", es_last_error());
    CHECK(es_gguf_writer_add_tensor(w, "t.bad", 99, 1, bad_ne, tdata[2]) == ES_ERR_INVALID_ARG &&
              msg_has("99"),
          "type 99 refused");

    char path[512];
    snprintf(path, sizeof path, "%s/rt.gguf", tmpdir);
    CHECK(es_gguf_writer_write(w, path) == ES_OK, "write: %s", es_last_error());
    uint8_t *mem = NULL;
    size_t mem_n = 0;
    CHECK(es_gguf_writer_write_memory(w, &mem, &mem_n) == ES_OK, "write_memory");
    size_t file_n = 0;
    char *file = es_test_read_file(path, &file_n);
    CHECK(file && file_n == mem_n && !memcmp(file, mem, mem_n),
          "file and memory images agree (%zu, %zu)", file_n, mem_n);
    CHECK(mem_n % 32 == 0, "image is padded to 32 (%zu)", mem_n);
    free(file);

    es_gguf *g = NULL;
    for (int pass = 0; pass < 2; pass++) {
        es_status st = pass == 0 ? es_gguf_open(path, &g) : es_gguf_open_memory(mem, mem_n, &g);
        if (!CHECK(st == ES_OK, "open round trip (pass %d): %s", pass, es_last_error())) continue;
        CHECK(es_gguf_version(g) == 3 && es_gguf_alignment(g) == 32, "v3, alignment 32");
        CHECK(es_gguf_n_kv(g) == 15 + (int64_t)ES_ARRAY_LEN(num) + 3, "n_kv %lld",
              (long long)es_gguf_n_kv(g));
        CHECK(str_eq(es_gguf_key(g, 0), "k.first") && es_gguf_kv_type(g, 0) == ES_GGUF_STRING,
              "re-set key keeps position 0 with its new type");
        CHECK(str_eq(es_gguf_key(g, 1), "k.u8"), "insertion order");
        es_gguf_str s;
        CHECK(es_gguf_get_str(g, "k.first", &s) == ES_OK && str_eq(s, "replaced"), "last value");
        uint32_t u = 0;
        int64_t v = 0;
        float f = 0;
        bool b = false;
        CHECK(es_gguf_get_u32(g, "k.u8", &u) == ES_OK && u == 200, "u8");
        CHECK(es_gguf_get_i64(g, "k.i8", &v) == ES_OK && v == -100, "i8");
        CHECK(es_gguf_get_u32(g, "k.i8", &u) == ES_ERR_FORMAT && msg_has("-100"),
              "i8 -> u32 fails");
        CHECK(es_gguf_get_u32(g, "k.u16", &u) == ES_OK && u == 65000, "u16");
        CHECK(es_gguf_get_i64(g, "k.i16", &v) == ES_OK && v == -32000, "i16");
        CHECK(es_gguf_get_u32(g, "k.u32", &u) == ES_OK && u == 4000000000u, "u32");
        CHECK(es_gguf_get_i64(g, "k.i32", &v) == ES_OK && v == -2000000000, "i32");
        CHECK(es_gguf_get_f32(g, "k.f32", &f) == ES_OK && f == 3.25f, "f32");
        uint32_t bits = 0;
        CHECK(es_gguf_get_f32(g, "k.nan", &f) == ES_OK && (memcpy(&bits, &f, 4), bits == nanbits),
              "NaN payload bit-exact %08x", bits);
        CHECK(es_gguf_get_bool(g, "k.bool", &b) == ES_OK && b, "bool");
        CHECK(es_gguf_get_bool(g, "k.u8", &b) == ES_ERR_FORMAT && msg_has("bool"), "bool of u8");
        CHECK(es_gguf_get_str(g, "k.str", &s) == ES_OK && str_eq(s, "h\xc3\xa9llo"), "str");
        CHECK(es_gguf_get_str(g, "k.empty", &s) == ES_OK && s.len == 0, "empty str");
        CHECK(es_gguf_get_i64(g, "k.u64", &v) == ES_ERR_FORMAT && msg_has("i64"), "u64 max -> i64");
        CHECK(es_gguf_get_i64(g, "k.i64", &v) == ES_OK && v == INT64_MIN, "i64 min");
        CHECK(es_gguf_get_f32(g, "k.f64", &f) == ES_OK && f == (float)f64, "f64 -> f32");
        CHECK(es_gguf_get_u32(g, "k.str", &u) == ES_ERR_FORMAT && msg_has("string"), "u32 of str");
        for (size_t i = 0; i < ES_ARRAY_LEN(num); i++) {
            snprintf(key, sizeof key, "arr.%d", (int)num[i]);
            es_gguf_vtype et;
            uint64_t n = 0;
            CHECK(es_gguf_get_arr(g, key, &et, &n) == ES_OK && et == num[i] && n == 7, "arr %s",
                  key);
            const void *d = es_gguf_arr_data(g, key);
            CHECK(d && !memcmp(d, raw, 7 * num_size[i]), "%s elements bit-exact", key);
        }
        int32_t i32s[7], want_i32[7];
        memcpy(want_i32, raw, sizeof want_i32);
        CHECK(es_gguf_arr_to_i32(g, "arr.5", i32s, 7) == ES_OK && !memcmp(i32s, want_i32, 28),
              "arr_to_i32 of i32");
        int16_t want_i16[7];
        memcpy(want_i16, raw, sizeof want_i16);
        float fl[7];
        CHECK(es_gguf_arr_to_f32(g, "arr.3", fl, 7) == ES_OK && fl[0] == (float)want_i16[0] &&
                  fl[6] == (float)want_i16[6],
              "arr_to_f32 of i16");
        int32_t keep[7] = {42, 42, 42, 42, 42, 42, 42};
        CHECK(es_gguf_arr_to_i32(g, "arr.10", keep, 7) == ES_ERR_FORMAT && keep[0] == 42,
              "u64 array -> i32 fails without touching out: %s", es_last_error());
        CHECK(es_gguf_arr_to_f32(g, "arr.str", fl, 4) == ES_ERR_FORMAT, "strings -> f32 fails");
        es_gguf_vtype et;
        uint64_t n = 0;
        CHECK(es_gguf_get_arr(g, "arr.none", &et, &n) == ES_OK && n == 0 && et == ES_GGUF_INT32,
              "empty");
        CHECK(es_gguf_get_arr(g, "arr.str", &et, &n) == ES_OK && n == 4 && et == ES_GGUF_STRING,
              "strs");
        for (int i = 0; i < 4; i++)
            CHECK(str_eq(es_gguf_arr_str(g, "arr.str", (uint64_t)i), strs[i]), "str %d", i);
        CHECK(es_gguf_arr_str(g, "arr.str", 4).ptr == NULL, "str 4 out of range");
        CHECK(es_gguf_get_arr(g, "arr.str0", &et, &n) == ES_OK && n == 0, "empty strs");
        CHECK(es_gguf_n_tensors(g) == (int64_t)ES_ARRAY_LEN(ts), "n_tensors");
        for (size_t i = 0; i < ES_ARRAY_LEN(ts); i++) {
            const es_gguf_tensor *t = es_gguf_tensor_at(g, (int64_t)i);
            if (!CHECK(t && !strcmp(t->name, ts[i].name), "tensor %zu in order", i)) continue;
            CHECK((int)t->type == ts[i].type && t->n_dims == ts[i].n_dims &&
                      !memcmp(t->ne, ts[i].ne, sizeof t->ne),
                  "%s type and shape", t->name);
            CHECK(t->nbytes == tbytes[i] && !memcmp(t->data, tdata[i], tbytes[i]),
                  "%s data bit-exact (%zu bytes)", t->name, t->nbytes);
            CHECK(t->offset % 32 == 0, "%s offset aligned", t->name);
        }
        es_gguf_close(g);
    }
    free(mem);

    /* general.alignment honoured by the writer and reader */
    es_gguf_writer_set_u32(w, "general.alignment", 64);
    CHECK(es_gguf_writer_write_memory(w, &mem, &mem_n) == ES_OK, "write_memory aligned 64");
    if (CHECK(es_gguf_open_memory(mem, mem_n, &g) == ES_OK, "open aligned 64: %s",
              es_last_error())) {
        CHECK(es_gguf_alignment(g) == 64, "alignment 64");
        for (int64_t i = 0; i < es_gguf_n_tensors(g); i++) {
            const es_gguf_tensor *t = es_gguf_tensor_at(g, i);
            CHECK(t->offset % 64 == 0 && ((const uint8_t *)t->data - mem) % 64 == 0 &&
                      !memcmp(t->data, tdata[i], tbytes[i]),
                  "%s at 64", t->name);
        }
        es_gguf_close(g);
    }
    free(mem);
    es_gguf_writer_set_u32(w, "general.alignment", 48);
    CHECK(es_gguf_writer_write_memory(w, &mem, &mem_n) == ES_ERR_INVALID_ARG,
          "alignment 48 refused");

    /* write failures name the path and the reason */
    CHECK(es_gguf_writer_write(w, "/nonexistent-dir/x.gguf") != ES_OK, "write to a missing dir");
    es_gguf_writer_set_u32(w, "general.alignment", 32);
    CHECK(es_gguf_writer_write(w, "/nonexistent-dir/x.gguf") == ES_ERR_IO &&
              msg_has("/nonexistent-dir/x.gguf") && msg_has("No such file"),
          "write error: %s", es_last_error());
    unlink(path);
    for (size_t i = 0; i < ES_ARRAY_LEN(ts); i++)
        free(tdata[i]);
    es_gguf_writer_free(w);
}

/* ------------------------------------------------------------------------- */
/* nested arrays, built by hand                                              */
/* ------------------------------------------------------------------------- */

/* Appends depth levels of arrays around one u16 array [1,2]. */
static void b_nested(bytes *b, int depth) {
    if (depth == 0) {
        b_u32(b, ES_GGUF_UINT16);
        b_u64(b, 2);
        uint16_t v[2] = {1, 2};
        b_put(b, v, 4);
        return;
    }
    b_u32(b, ES_GGUF_ARRAY);
    b_u64(b, 1);
    b_nested(b, depth - 1);
}

static void test_nested(void) {
    bytes b = {0};
    b_header(&b, 3, 0, 4);
    /* nested.a = [[1,2],[3]] as u16 arrays */
    b_str(&b, "nested.a");
    b_u32(&b, ES_GGUF_ARRAY);
    b_u32(&b, ES_GGUF_ARRAY);
    b_u64(&b, 2);
    b_u32(&b, ES_GGUF_UINT16);
    b_u64(&b, 2);
    uint16_t v[3] = {1, 2, 3};
    b_put(&b, v, 4);
    b_u32(&b, ES_GGUF_UINT16);
    b_u64(&b, 1);
    b_put(&b, v + 2, 2);
    /* nested.s = [["x","yz"],[]] of strings */
    b_str(&b, "nested.s");
    b_u32(&b, ES_GGUF_ARRAY);
    b_u32(&b, ES_GGUF_ARRAY);
    b_u64(&b, 2);
    b_u32(&b, ES_GGUF_STRING);
    b_u64(&b, 2);
    b_str(&b, "x");
    b_str(&b, "yz");
    b_u32(&b, ES_GGUF_STRING);
    b_u64(&b, 0);
    /* nested.deep: 8 levels (the cap) */
    b_str(&b, "nested.deep");
    b_u32(&b, ES_GGUF_ARRAY);
    b_nested(&b, 7);
    b_kv_u32(&b, "after", 7);
    es_gguf *g = NULL;
    uint8_t *keep = NULL;
    if (CHECK(open_copy(b.p, b.n, &g, &keep) == ES_OK, "nested arrays: %s", es_last_error())) {
        es_gguf_vtype et;
        uint64_t n = 0;
        CHECK(es_gguf_get_arr(g, "nested.a", &et, &n) == ES_OK && et == ES_GGUF_ARRAY && n == 2,
              "array of 2 arrays");
        CHECK(es_gguf_arr_data(g, "nested.a") == NULL, "no raw data for nested arrays");
        CHECK(es_gguf_arr_str(g, "nested.s", 0).ptr == NULL, "no strings from nested arrays");
        CHECK(es_gguf_get_arr(g, "nested.s", &et, &n) == ES_OK && et == ES_GGUF_ARRAY && n == 2,
              "s");
        CHECK(es_gguf_get_arr(g, "nested.deep", &et, &n) == ES_OK && et == ES_GGUF_ARRAY && n == 1,
              "deep");
        float f[2];
        CHECK(es_gguf_arr_to_f32(g, "nested.a", f, 2) == ES_ERR_FORMAT, "nested -> f32 fails");
        uint32_t u = 0;
        CHECK(es_gguf_get_u32(g, "after", &u) == ES_OK && u == 7, "key after nested arrays = %u",
              u);
        es_gguf_close(g);
    }
    free(keep);

    /* the writer accepts the same bytes as a raw value and round-trips them */
    es_gguf_writer *w = es_gguf_writer_new();
    bytes raw = {0};
    b_nested(&raw, 3);
    CHECK(es_gguf_writer_set_raw(w, "raw.nested", ES_GGUF_ARRAY, raw.p, raw.n) == ES_OK, "set_raw");
    CHECK(es_gguf_writer_set_raw(w, "raw.bad", ES_GGUF_ARRAY, raw.p, raw.n - 1) ==
              ES_ERR_INVALID_ARG,
          "set_raw of a truncated value refused");
    CHECK(es_gguf_writer_set_raw(w, "raw.long", ES_GGUF_ARRAY, raw.p, raw.n + 0) == ES_OK, "ok");
    uint8_t *mem = NULL;
    size_t mem_n = 0;
    if (CHECK(es_gguf_writer_write_memory(w, &mem, &mem_n) == ES_OK, "write") &&
        CHECK(es_gguf_open_memory(mem, mem_n, &g) == ES_OK, "reopen raw: %s", es_last_error())) {
        es_gguf_vtype et;
        uint64_t n = 0;
        CHECK(es_gguf_get_arr(g, "raw.nested", &et, &n) == ES_OK && et == ES_GGUF_ARRAY && n == 1,
              "raw");
        CHECK(es_gguf_find_key(g, "raw.bad") == -1, "refused key absent");
        es_gguf_close(g);
    }
    free(mem);
    free(raw.p);
    es_gguf_writer_free(w);
    free(b.p);
}

/* ------------------------------------------------------------------------- */
/* malformed files                                                           */
/* ------------------------------------------------------------------------- */

/* A one-tensor file with the given tensor fields and alignment key (0 = none). */
static bytes one_tensor(uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset,
                        size_t data_bytes) {
    bytes b = {0};
    b_header(&b, 3, 1, 1);
    b_kv_u32(&b, "general.foo", 1);
    b_tensor(&b, "blk.0.attn_q.weight", n_dims, ne, type, offset);
    b_pad(&b, 32);
    b_zeros(&b, data_bytes);
    return b;
}

static void test_truncations(void) {
    /* a small valid file from the writer; every prefix must fail cleanly */
    es_gguf_writer *w = es_gguf_writer_new();
    es_gguf_writer_set_str(w, "general.architecture", "llama");
    es_gguf_writer_set_u32(w, "llama.block_count", 2);
    es_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    es_gguf_writer_set_bool(w, "x.flag", true);
    const char *toks[] = {"a", "bc", "def"};
    es_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    float sc[3] = {1, 2, 3};
    es_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ES_GGUF_FLOAT32, sc, 3);
    float d32[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ne_a[2] = {4, 2}, ne_b[1] = {32};
    es_gguf_writer_add_tensor(w, "a", ES_TYPE_F32, 2, ne_a, d32);
    uint8_t q8[34] = {0};
    es_gguf_writer_add_tensor(w, "b", ES_TYPE_Q8_0, 1, ne_b, q8);
    uint8_t *mem = NULL;
    size_t n = 0;
    if (!CHECK(es_gguf_writer_write_memory(w, &mem, &n) == ES_OK, "write small")) {
        es_gguf_writer_free(w);
        return;
    }
    es_gguf_writer_free(w);
    es_gguf *g = NULL;
    size_t data_end = 0;
    if (CHECK(es_gguf_open_memory(mem, n, &g) == ES_OK, "open small: %s", es_last_error())) {
        for (int64_t i = 0; i < es_gguf_n_tensors(g); i++) {
            const es_gguf_tensor *t = es_gguf_tensor_at(g, i);
            size_t end = (size_t)((const uint8_t *)t->data - mem) + t->nbytes;
            if (end > data_end) data_end = end;
        }
        es_gguf_close(g);
    }
    int bad_ok = 0, bad_msg = 0, good = 0;
    for (size_t len = 0; len < n; len++) {
        uint8_t *keep = NULL;
        es_status st = open_copy(mem, len, &g, &keep);
        if (len < data_end) {
            bool words = msg_has("truncated") || msg_has("past the end") || msg_has("bytes left") ||
                         msg_has("bytes follow") || msg_has("empty") || msg_has("magic");
            if (st == ES_ERR_FORMAT)
                bad_ok++;
            else
                CHECK(false, "prefix %zu of %zu: status %d", len, n, st);
            if (words)
                bad_msg++;
            else
                CHECK(false, "prefix %zu: message '%s'", len, es_last_error());
        } else {
            /* only the trailing padding is missing: still a valid file */
            if (CHECK(st == ES_OK, "prefix %zu (data ends at %zu): %s", len, data_end,
                      es_last_error()))
                good++;
            es_gguf_close(g);
        }
        free(keep);
    }
    printf("truncations: %d of %zu prefixes fail with a clear message, %d valid (padding only)\n",
           bad_msg, data_end, good);
    CHECK(bad_ok == (int)data_end && bad_msg == (int)data_end, "all short prefixes fail");
    free(mem);
}

static void test_bad_files(void) {
    bytes b = {0};
    /* empty, magic, version */
    expect_bad("zero-length", &b, ES_ERR_FORMAT, "empty");
    b_put(&b, "GGU", 3);
    expect_bad("3 bytes", &b, ES_ERR_FORMAT, "magic");
    b.n = 0;
    b_put(&b, "GGUX", 4);
    b_u32(&b, 3);
    b_u64(&b, 0);
    b_u64(&b, 0);
    expect_bad("wrong magic", &b, ES_ERR_FORMAT, "magic");
    static const struct {
        uint32_t v;
        const char *word;
    } vers[] = {{1, "version 1"},
                {4, "version 4"},
                {0, "version 0"},
                {0xffffffffu, "version 4294967295"},
                {0x03000000u, "big-endian"},
                {0x02000000u, "big-endian"}};
    for (size_t i = 0; i < ES_ARRAY_LEN(vers); i++) {
        b.n = 0;
        b_header(&b, vers[i].v, 0, 0);
        expect_bad(vers[i].word, &b, ES_ERR_FORMAT, vers[i].word);
    }
    b.n = 0;
    b_header(&b, 2, 0, 0);
    es_gguf *g = NULL;
    CHECK(es_gguf_open_memory(b.p, b.n, &g) == ES_OK && es_gguf_version(g) == 2, "empty v2 ok");
    es_gguf_close(g);
    g = NULL;
    /* counts */
    b.n = 0;
    b_header(&b, 3, 0, 1ull << 63);
    expect_bad("n_kv 2^63", &b, ES_ERR_FORMAT, "key/values");
    b.n = 0;
    b_header(&b, 3, UINT64_MAX, 0);
    expect_bad("n_tensors 2^64-1", &b, ES_ERR_FORMAT, "tensors");
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_u64(&b, UINT64_MAX);
    b_put(&b, "key.and.more.bytes.here", 23);
    expect_bad("key length 2^64-1", &b, ES_ERR_FORMAT, "string length");
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, ES_GGUF_STRING);
    b_u64(&b, UINT64_MAX);
    b_put(&b, "abc", 3);
    expect_bad("string value length 2^64-1", &b, ES_ERR_FORMAT, "string length");
    static const uint32_t arr_types[] = {ES_GGUF_UINT8, ES_GGUF_UINT64, ES_GGUF_STRING,
                                         ES_GGUF_ARRAY};
    static const uint64_t counts[] = {UINT64_MAX, 1ull << 61, 1000};
    for (size_t i = 0; i < ES_ARRAY_LEN(arr_types); i++)
        for (size_t j = 0; j < ES_ARRAY_LEN(counts); j++) {
            b.n = 0;
            b_header(&b, 3, 0, 1);
            b_str(&b, "tokenizer.ggml.tokens");
            b_u32(&b, ES_GGUF_ARRAY);
            b_u32(&b, arr_types[i]);
            b_u64(&b, counts[j]);
            b_zeros(&b, 40);
            char what[64];
            snprintf(what, sizeof what, "array of type %u count %llu", arr_types[i],
                     (unsigned long long)counts[j]);
            expect_bad(what, &b, ES_ERR_FORMAT, "array count");
            CHECK(msg_has("tokenizer.ggml.tokens"), "message names the key: %s", es_last_error());
        }
    /* nesting deeper than the cap (8) */
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_str(&b, "deep");
    b_u32(&b, ES_GGUF_ARRAY);
    b_nested(&b, 8);
    expect_bad("9 nested arrays", &b, ES_ERR_FORMAT, "nested deeper");
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_str(&b, "deep");
    b_u32(&b, ES_GGUF_ARRAY);
    for (int i = 0; i < 10000; i++) {
        b_u32(&b, ES_GGUF_ARRAY);
        b_u64(&b, 1);
    }
    expect_bad("10000 nested arrays", &b, ES_ERR_FORMAT, "nested deeper");
    /* value types */
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, 13);
    b_u32(&b, 0);
    expect_bad("value type 13", &b, ES_ERR_FORMAT, "unknown value type 13");
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, ES_GGUF_ARRAY);
    b_u32(&b, 77);
    b_u64(&b, 1);
    b_u32(&b, 0);
    expect_bad("array element type 77", &b, ES_ERR_FORMAT, "77");
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_u64(&b, 3);
    b_put(&b, "a\0b", 3);
    b_u32(&b, ES_GGUF_UINT8);
    b_u8(&b, 0);
    expect_bad("NUL in a key", &b, ES_ERR_FORMAT, "NUL");
    /* duplicate key */
    b.n = 0;
    b_header(&b, 3, 0, 3);
    b_kv_u32(&b, "a.key", 1);
    b_kv_u32(&b, "b.key", 2);
    b_kv_u32(&b, "a.key", 3);
    expect_bad("duplicate key", &b, ES_ERR_FORMAT, "duplicate key 'a.key'");
    /* alignment */
    static const uint32_t aligns[] = {0, 3, 48};
    for (size_t i = 0; i < ES_ARRAY_LEN(aligns); i++) {
        b.n = 0;
        b_header(&b, 3, 0, 1);
        b_kv_u32(&b, "general.alignment", aligns[i]);
        expect_bad("bad alignment", &b, ES_ERR_FORMAT, "power of two");
    }
    b.n = 0;
    b_header(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, ES_GGUF_UINT64);
    b_u64(&b, 32);
    expect_bad("u64 alignment", &b, ES_ERR_FORMAT, "expected u32");
    /* tensor infos */
    uint64_t ne[5] = {32, 4, 1, 1, 1};
    bytes t = one_tensor(2, ne, ES_TYPE_F32, 0, 512);
    uint8_t *keep = NULL;
    if (CHECK(open_copy(t.p, t.n, &g, &keep) == ES_OK, "valid one-tensor file: %s",
              es_last_error())) {
        const es_gguf_tensor *tt = es_gguf_find_tensor(g, "blk.0.attn_q.weight");
        CHECK(tt && tt->nbytes == 512 && tt->ne[0] == 32 && tt->ne[1] == 4, "one tensor");
        es_gguf_close(g);
        g = NULL;
    }
    free(keep);
    free(t.p);
    t = one_tensor(0, ne, ES_TYPE_F32, 0, 512);
    expect_bad("n_dims 0", &t, ES_ERR_FORMAT, "n_dims 0");
    free(t.p);
    t = one_tensor(5, ne, ES_TYPE_F32, 0, 512);
    expect_bad("n_dims 5", &t, ES_ERR_FORMAT, "n_dims 5");
    free(t.p);
    uint64_t big[2] = {1ull << 40, 1ull << 40};
    t = one_tensor(2, big, ES_TYPE_F32, 0, 64);
    expect_bad("ne 2^40 x 2^40", &t, ES_ERR_FORMAT, "overflow");
    free(t.p);
    uint64_t big3[3] = {1ull << 31, 1ull << 30, 2}; /* 2^62 elements fit, 2^64 bytes do not */
    t = one_tensor(3, big3, ES_TYPE_F32, 0, 64);
    expect_bad("2^62 f32 (bytes overflow)", &t, ES_ERR_FORMAT, "byte size overflows");
    free(t.p);
    uint64_t neg[2] = {32, (uint64_t)-1};
    t = one_tensor(2, neg, ES_TYPE_F32, 0, 64);
    expect_bad("ne -1", &t, ES_ERR_FORMAT, "positive");
    CHECK(msg_has("-1"), "names -1: %s", es_last_error());
    free(t.p);
    uint64_t zero[2] = {32, 0};
    t = one_tensor(2, zero, ES_TYPE_F32, 0, 64);
    expect_bad("ne 0", &t, ES_ERR_FORMAT, "positive");
    free(t.p);
    t = one_tensor(2, ne, 99, 0, 512);
    expect_bad("type 99", &t, ES_ERR_FORMAT,
               "gguf: tensor 'blk.0.attn_q.weight': unknown tensor type 99");
    free(t.p);
    t = one_tensor(2, ne, 4, 0, 512); /* Q4_2: removed from GGML */
    expect_bad("type 4", &t, ES_ERR_FORMAT, "unknown tensor type 4");
    free(t.p);
    t = one_tensor(2, ne, 0x80000000u, 0, 512);
    expect_bad("type 2^31", &t, ES_ERR_FORMAT, "2147483648");
    free(t.p);
    uint64_t ne33[1] = {33};
    t = one_tensor(1, ne33, ES_TYPE_Q8_0, 0, 64);
    expect_bad("Q8_0 ne0 33", &t, ES_ERR_FORMAT, "block size");
    free(t.p);
    t = one_tensor(2, ne, ES_TYPE_F32, 16, 1024);
    expect_bad("misaligned offset", &t, ES_ERR_FORMAT, "alignment");
    free(t.p);
    t = one_tensor(2, ne, ES_TYPE_F32, 32, 512);
    expect_bad("offset past end", &t, ES_ERR_FORMAT, "past the end");
    free(t.p);
    t = one_tensor(2, ne, ES_TYPE_F32, 0xffffffffffffffe0ull, 512);
    expect_bad("offset 2^64-32", &t, ES_ERR_FORMAT, "past the end");
    free(t.p);
    t = one_tensor(2, ne, ES_TYPE_F32, 0, 511);
    expect_bad("data one byte short", &t, ES_ERR_FORMAT, "past the end");
    free(t.p);
    /* duplicate tensor name */
    b.n = 0;
    b_header(&b, 3, 2, 0);
    b_tensor(&b, "tok", 1, ne, ES_TYPE_F32, 0);
    b_tensor(&b, "tok", 1, ne, ES_TYPE_F32, 128);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_bad("duplicate tensor", &b, ES_ERR_FORMAT, "duplicate tensor name 'tok'");
    free(b.p);

    /* files on disk: missing, a directory, empty */
    CHECK(es_gguf_open("/nonexistent/x.gguf", &g) == ES_ERR_IO && msg_has("/nonexistent/x.gguf"),
          "missing file: %s", es_last_error());
    CHECK(es_gguf_open(tmpdir, &g) == ES_ERR_IO && msg_has("regular"), "directory: %s",
          es_last_error());
    char path[512];
    snprintf(path, sizeof path, "%s/empty.gguf", tmpdir);
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK(es_gguf_open(path, &g) == ES_ERR_FORMAT && msg_has("empty"), "empty file: %s",
          es_last_error());
    unlink(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/es_test_gguf.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_writer_round_trip();
    test_nested();
    test_truncations();
    test_bad_files();
    if (es_test_shared()) {
        test_llama_f16();
        test_llama_ref();
        test_quant();
        test_vocab();
        test_all_shared_files();
    } else {
        printf("skipping the real-file checks: no shared folder (set ES_SHARED)\n");
    }
    rmdir(tmpdir);
    return es_test_finish();
}
