/*
 * scorers.h — internal pieces of the model-based evaluation scorers (scorers.c): the
 * labelled-TSV reader behind es_validate_tsv and a UTF-8 helper. The teacher-forcing
 * driver (es_tf_decode) is public (emosteer.h, "Evaluation: scorers").
 */
#ifndef ES_SCORERS_H
#define ES_SCORERS_H

#include "emosteer.h"

#include <stddef.h>
#include <stdint.h>

/* The length of the longest prefix of s[0..len) that does not end inside a UTF-8
 * character (a trailing lead byte without all its continuation bytes is dropped). */
size_t es_utf8_complete_prefix(const char *s, size_t len);

/* Parses labelled text: lines "label<TAB>text" (labels as es_emotion_parse), '#'
 * comment lines and blank lines skipped, CR before LF ignored. `name` is used in
 * messages. At most max_per_class sentences of each label are kept (0 = all), in file
 * order. */
es_status es_labelled_parse(const char *data, size_t len, const char *name, int max_per_class,
                            es_labelled *out);

#endif /* ES_SCORERS_H */
