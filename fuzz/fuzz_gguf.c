/*
 * fuzz_gguf.c — fuzzes the GGUF reader: opens the input with es_gguf_open_memory and,
 * when it validates, touches everything a consumer could: every key through every
 * getter, every array element, every tensor's first and last data byte.
 *
 * Seeds: a few small real GGUFs from the shared folder and a generated image with a
 * key of every value type, a nested array and two tensors.
 */
#include "fuzz_seeds.h"
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static volatile uint64_t sink; /* keeps the reads from being optimized away */

static void walk_key(const es_gguf *g, const char *key) {
    uint32_t u32;
    int64_t i64;
    float f;
    bool b;
    es_gguf_str s;
    if (es_gguf_get_u32(g, key, &u32) == ES_OK) sink += u32;
    if (es_gguf_get_i64(g, key, &i64) == ES_OK) sink += (uint64_t)i64;
    if (es_gguf_get_f32(g, key, &f) == ES_OK) sink += (uint64_t)(f == f);
    if (es_gguf_get_bool(g, key, &b) == ES_OK) sink += b;
    if (es_gguf_get_str(g, key, &s) == ES_OK && s.len) sink += (uint8_t)s.ptr[s.len - 1];
    char *dup = es_gguf_get_str_dup(g, key);
    if (dup) sink += strlen(dup);
    free(dup);
    es_gguf_vtype et;
    uint64_t n;
    if (es_gguf_get_arr(g, key, &et, &n) != ES_OK) return;
    for (uint64_t i = 0; i < n; i++) {
        es_gguf_str e = es_gguf_arr_str(g, key, i);
        if (e.len) sink += (uint8_t)e.ptr[0] + (uint8_t)e.ptr[e.len - 1];
    }
    sink += es_gguf_arr_str(g, key, n).len; /* out of range: {NULL, 0} */
    const uint8_t *raw = es_gguf_arr_data(g, key);
    if (raw && n) sink += raw[0];
    /* a numeric array has at most `size` elements, so these allocations are bounded */
    float *fo = raw ? malloc((size_t)n * sizeof *fo + 1) : NULL;
    int32_t *io = raw ? malloc((size_t)n * sizeof *io + 1) : NULL;
    if (fo && es_gguf_arr_to_f32(g, key, fo, n) == ES_OK && n) sink += (uint64_t)(fo[n - 1] == 0);
    if (io && es_gguf_arr_to_i32(g, key, io, n) == ES_OK && n) sink += (uint64_t)io[n - 1];
    free(fo);
    free(io);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    es_gguf *g = NULL;
    if (es_gguf_open_memory(data, size, &g) != ES_OK) return 0;
    sink += es_gguf_version(g) + es_gguf_alignment(g);
    for (int64_t i = 0; i < es_gguf_n_kv(g); i++) {
        es_gguf_str k = es_gguf_key(g, i);
        char *key = malloc((size_t)k.len + 1);
        if (!key) break;
        memcpy(key, k.ptr, (size_t)k.len);
        key[k.len] = '\0';
        if (es_gguf_find_key(g, key) != i) abort(); /* keys are unique and NUL-free */
        sink += (uint64_t)es_gguf_kv_type(g, i);
        walk_key(g, key);
        free(key);
    }
    for (int64_t i = 0; i < es_gguf_n_tensors(g); i++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        if (t->nbytes == 0 || d < data || d + t->nbytes > data + size) abort();
        sink += d[0] + d[t->nbytes - 1];
        if (es_gguf_find_tensor(g, t->name) != t) abort();
    }
    es_gguf_close(g);
    return 0;
}

/* ---- seeds ---- */

int es_fuzz_seed_paths(char paths[][4096], int max) {
    static const char *const rel[] = {
        "fixtures/quant/llama.Q4_0.llamacpp-ref.gguf", /* 82 KB: two tensors, two keys */
        "vocab/ggml-vocab-llama-spm.gguf",             /* 0.7 MB: string/f32/i32 arrays */
        "vocab/ggml-vocab-gpt-2.gguf",                 /* 1.7 MB: 50k tokens and merges */
    };
    const char *shared = getenv("ES_SHARED");
    struct stat st;
    if (!shared || stat(shared, &st) != 0) shared = "../shared";
    int n = 0;
    for (size_t i = 0; i < sizeof rel / sizeof rel[0] && n < max; i++) {
        snprintf(paths[n], 4096, "%s/%s", shared, rel[i]);
        if (stat(paths[n], &st) == 0) n++;
    }
    return n;
}

const uint8_t *es_fuzz_builtin_seed(size_t *n) {
    static uint8_t *image;
    static size_t image_n;
    if (image) {
        *n = image_n;
        return image;
    }
    es_gguf_writer *w = es_gguf_writer_new();
    if (!w) return NULL;
    uint8_t u8 = 7;
    int8_t i8 = -7;
    uint16_t u16 = 700;
    int16_t i16 = -700;
    int64_t i64 = -7000000000ll;
    double f64 = 0.5;
    es_gguf_writer_set_str(w, "general.architecture", "llama");
    es_gguf_writer_set_val(w, "k.u8", ES_GGUF_UINT8, &u8);
    es_gguf_writer_set_val(w, "k.i8", ES_GGUF_INT8, &i8);
    es_gguf_writer_set_val(w, "k.u16", ES_GGUF_UINT16, &u16);
    es_gguf_writer_set_val(w, "k.i16", ES_GGUF_INT16, &i16);
    es_gguf_writer_set_u32(w, "llama.block_count", 2);
    es_gguf_writer_set_i32(w, "k.i32", -2);
    es_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    es_gguf_writer_set_bool(w, "k.bool", true);
    es_gguf_writer_set_u64(w, "k.u64", 1ull << 40);
    es_gguf_writer_set_val(w, "k.i64", ES_GGUF_INT64, &i64);
    es_gguf_writer_set_val(w, "k.f64", ES_GGUF_FLOAT64, &f64);
    es_gguf_writer_set_u32(w, "general.alignment", 32);
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81hi", ""};
    es_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 5);
    float scores[5] = {0, -1, -2, -3.5f, 1e30f};
    es_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ES_GGUF_FLOAT32, scores, 5);
    int32_t types[5] = {2, 3, 3, 1, 1};
    es_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ES_GGUF_INT32, types, 5);
    /* [[1, 2], ["a"]]: an array of a u16 array and a string array */
    static const uint8_t nested[] = {9, 0, 0, 0, 2, 0, 0, 0, 0,  0, 0, 0, /* array of 2 arrays */
                                     2, 0, 0, 0, 2, 0, 0, 0, 0,  0, 0, 0,
                                     1, 0, 2, 0,                          /* u16 [1, 2] */
                                     8, 0, 0, 0, 1, 0, 0, 0, 0,  0, 0, 0, /* string [1] */
                                     1, 0, 0, 0, 0, 0, 0, 0, 'a'};
    es_gguf_writer_set_raw(w, "k.nested", ES_GGUF_ARRAY, nested, sizeof nested);
    float t0[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ne0[2] = {4, 2};
    es_gguf_writer_add_tensor(w, "token_embd.weight", 0 /* F32 */, 2, ne0, t0);
    uint8_t q8[2 * 34];
    for (size_t i = 0; i < sizeof q8; i++)
        q8[i] = (uint8_t)(i * 37);
    int64_t ne1[2] = {32, 2};
    es_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", 8 /* Q8_0 */, 2, ne1, q8);
    if (es_gguf_writer_write_memory(w, &image, &image_n) != ES_OK) image = NULL;
    es_gguf_writer_free(w);
    *n = image_n;
    return image;
}

/* libFuzzer: prime an empty corpus folder with the seeds above. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    es_fuzz_prime_corpus(*argc, *argv);
    return 0;
}
