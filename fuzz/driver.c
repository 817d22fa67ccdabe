/*
 * driver.c — a deterministic stand-in for libFuzzer, so fuzz targets also run in
 * builds without clang: it feeds LLVMFuzzerTestOneInput the seed files named by the
 * target (es_fuzz_seeds) and --runs mutations of them (bit flips, byte sets, cuts,
 * duplications, interesting integers), from a fixed PRNG seed.
 *
 *   fuzz_NAME [--runs N] [--seed S] [FILE...]
 */
#include "fuzz_seeds.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0 || len > (1 << 24)) {
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static size_t mutate(uint8_t *buf, size_t n, size_t cap) {
    static const uint64_t interesting[] = {0,
                                           1,
                                           0x7f,
                                           0x80,
                                           0xff,
                                           0x7fff,
                                           0xffff,
                                           0x7fffffff,
                                           0xffffffff,
                                           0x100000000ull,
                                           0x7fffffffffffffffull,
                                           0xffffffffffffffffull};
    int k = 1 + (int)(rng() % 4);
    for (int i = 0; i < k && n > 0; i++) {
        switch (rng() % 6) {
        case 0: buf[rng() % n] ^= (uint8_t)(1u << (rng() % 8)); break;
        case 1: buf[rng() % n] = (uint8_t)rng(); break;
        case 2: n = rng() % n; break; /* truncate */
        case 3: {                     /* overwrite 1, 2, 4 or 8 bytes with an interesting value */
            size_t w = (size_t)1 << (rng() % 4);
            if (w <= n) {
                uint64_t v = interesting[rng() % (sizeof interesting / sizeof interesting[0])];
                memcpy(buf + rng() % (n - w + 1), &v, w);
            }
            break;
        }
        case 4: { /* duplicate a chunk */
            size_t len = 1 + rng() % 64;
            if (len < n && n + len <= cap) {
                size_t from = rng() % (n - len), to = rng() % n;
                memmove(buf + to + len, buf + to, n - to);
                memmove(buf + to, buf + from + (from >= to ? len : 0), len);
                n += len;
            }
            break;
        }
        default: { /* delete a chunk */
            size_t len = 1 + rng() % 32;
            if (len < n) {
                size_t at = rng() % (n - len);
                memmove(buf + at, buf + at + len, n - at - len);
                n -= len;
            }
        }
        }
    }
    return n;
}

int main(int argc, char **argv) {
    long runs = 10000;
    const char *files[64];
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state = strtoull(argv[++i], 0, 10) | 1;
        else if (n_files < 64)
            files[n_files++] = argv[i];
    }
    /* seeds: files on the command line, else the target's own seed list */
    uint8_t *seeds[64];
    size_t seed_len[64];
    int n_seeds = 0;
    static char pathbuf[64][4096];
    if (n_files == 0) {
        n_files = es_fuzz_seed_paths(pathbuf, 64);
        for (int i = 0; i < n_files; i++)
            files[i] = pathbuf[i];
    }
    for (int i = 0; i < n_files; i++) {
        uint8_t *b = read_all(files[i], &seed_len[n_seeds]);
        if (b) seeds[n_seeds++] = b;
    }
    size_t n_builtin = 0;
    const uint8_t *builtin = es_fuzz_builtin_seed(&n_builtin);
    if (builtin && n_seeds < 64) {
        seeds[n_seeds] = malloc(n_builtin + 1);
        memcpy(seeds[n_seeds], builtin, n_builtin);
        seed_len[n_seeds++] = n_builtin;
    }
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    for (int i = 0; i < n_seeds; i++)
        LLVMFuzzerTestOneInput(seeds[i], seed_len[i]);
    for (long r = 0; r < runs && n_seeds > 0; r++) {
        int s = (int)(rng() % (uint64_t)n_seeds);
        size_t n = seed_len[s] < cap ? seed_len[s] : cap;
        /* mutate only a prefix of big seeds: headers are where parsers go wrong */
        if (n > 8192 && rng() % 4) {
            size_t prefix = 8192 + rng() % 8192;
            if (prefix < n) n = prefix; /* never past the seed's end */
        }
        memcpy(buf, seeds[s], n);
        n = mutate(buf, n, cap);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz driver: %d seeds, %ld runs, no crash\n", n_seeds, runs);
    printf("%ld passed, 0 failed\n", runs);
    for (int i = 0; i < n_seeds; i++)
        free(seeds[i]);
    free(buf);
    return 0;
}
