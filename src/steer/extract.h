/*
 * extract.h — internal parts of emotion-vector extraction. The API, the pairs file and
 * the checkpoint format are public (emosteer.h, "Extraction").
 */
#ifndef ES_EXTRACT_H
#define ES_EXTRACT_H

#include "common.h"

#include <stdio.h>

/* es_extract_pairs_load from memory (`name` is used in messages); src/steer/extract_io.c. */
es_status es_extract_pairs_parse(const char *text, size_t len, const char *name,
                                 es_extract_pair **pairs, int *n);

#endif /* ES_EXTRACT_H */
