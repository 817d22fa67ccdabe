/* fuzz_seeds.h — what each fuzz target offers the standalone driver as seeds. */
#ifndef ES_FUZZ_SEEDS_H
#define ES_FUZZ_SEEDS_H
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
/* Fills paths[i] with up to max seed file paths; returns how many. */
int es_fuzz_seed_paths(char paths[][4096], int max);
/* An in-memory seed (e.g. a small generated GGUF), or NULL. */
const uint8_t *es_fuzz_builtin_seed(size_t *n);

/* For libFuzzer builds: a target's LLVMFuzzerInitialize may call this to copy its
 * seeds (the files and the built-in one) into the first corpus folder named on the
 * command line, if that folder is empty, so that fuzzing starts from real inputs. */
static inline void es_fuzz_prime_corpus(int argc, char **argv) {
    const char *dir = NULL;
    struct stat st;
    for (int i = 1; i < argc && !dir; i++)
        if (argv[i][0] != '-' && stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) dir = argv[i];
    if (!dir) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) entries++;
    closedir(d);
    if (entries) return;
    static char paths[16][4096];
    char out[4200];
    int n = es_fuzz_seed_paths(paths, 16);
    for (int i = 0; i <= n; i++) {
        const uint8_t *data = NULL;
        size_t len = 0;
        static uint8_t buf[1 << 16]; /* first 64 KB of each seed file */
        if (i == n) {
            data = es_fuzz_builtin_seed(&len);
        } else {
            FILE *f = fopen(paths[i], "rb");
            if (!f) continue;
            len = fread(buf, 1, sizeof buf, f);
            fclose(f);
            data = buf;
        }
        if (!data || !len) continue;
        snprintf(out, sizeof out, "%s/seed-%d", dir, i);
        FILE *f = fopen(out, "wb");
        if (!f) continue;
        fwrite(data, 1, len, f);
        fclose(f);
    }
}
#endif
