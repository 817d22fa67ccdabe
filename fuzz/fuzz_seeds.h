/* fuzz_seeds.h — what each fuzz target offers the standalone driver as seeds. */
#ifndef ES_FUZZ_SEEDS_H
#define ES_FUZZ_SEEDS_H
#include <stddef.h>
#include <stdint.h>
/* Fills paths[i] with up to max seed file paths; returns how many. */
int es_fuzz_seed_paths(char paths[][4096], int max);
/* An in-memory seed (e.g. a small generated GGUF), or NULL. */
const uint8_t *es_fuzz_builtin_seed(size_t *n);
#endif
