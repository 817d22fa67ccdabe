/*
 * queries.h — query sets for extracting and evaluating emotion vectors.
 *
 * Two JSON shapes are read:
 *
 * 1. EmotionQuery (Dong et al. 2025): an object of emotion -> array of query strings
 *      {"anger": ["How did you feel when ...?", ...], "joy": [...], ...}
 *
 * 2. emosteer (data/queries/emosteer-queries.json): the same object under "queries",
 *    plus conditioning instructions per emotion:
 *      {"format": "emosteer-queries/1", "description": "...", "license": "...",
 *       "queries": {"anger": [...], ..., "neutral": [...]},
 *       "instructions": {"anger": {"system": "Respond as someone who ...",
 *                                  "prefix": "I am absolutely furious ..."}, ...}}
 *    "system" is a system prompt for chat models, "prefix" a short text to put before
 *    the query for base models; either may be absent. An instruction for a name with no
 *    query list makes a list with no queries.
 *
 * Rules for both: names are 1..63 characters of [A-Za-z0-9_-]; every list holds 1 or
 * more non-empty strings of at most 65536 bytes; duplicate JSON keys are an error;
 * repeated queries inside a list are kept (EmotionQuery has some) and counted. Every
 * failure is ES_ERR_FORMAT (or ES_ERR_UNSUPPORTED for an unknown format version) with
 * a message naming the file and the entry, e.g. "q.json: queries.joy[17]: expected a
 * non-empty string".
 *
 * Query ids are "<name>-<index>" with the 0-based index in 4 digits: "joy-0017".
 */
#ifndef ES_QUERIES_H
#define ES_QUERIES_H

#include "emosteer.h"

#include <stddef.h>

typedef struct es_query {
    char *id;   /* "joy-0017" (owned) */
    char *text; /* the query (owned) */
} es_query;

typedef struct es_query_list {
    char *emotion;     /* the list's name: an emotion or "neutral" (owned) */
    int n;             /* queries, >= 0 (0 only for an instruction-only entry) */
    es_query *queries; /* [n] */
    char *system;      /* conditioning system prompt, or NULL (owned) */
    char *prefix;      /* conditioning text prefix for base models, or NULL (owned) */
    int n_duplicates;  /* queries equal to an earlier one of the same list */
} es_query_list;

typedef enum es_query_format {
    ES_QUERY_FORMAT_EMOTIONQUERY = 0,
    ES_QUERY_FORMAT_EMOSTEER = 1,
} es_query_format;

typedef struct es_query_set {
    es_query_format format;
    char *source;      /* the path or name given when loading (owned) */
    char *description; /* "description" of an emosteer file, or NULL (owned) */
    int n_lists;
    es_query_list *lists; /* [n_lists] in file order */
} es_query_set;

/* Reads and validates a query file. On success *out is owned by the caller
 * (es_query_set_free). */
es_status es_query_set_load(const char *path, es_query_set **out);

/* The same from memory; `name` is used in messages and as source. */
es_status es_query_set_parse(const char *json, size_t len, const char *name, es_query_set **out);

void es_query_set_free(es_query_set *qs);

/* The list named `emotion`, or NULL. Borrowed from qs. */
const es_query_list *es_query_set_find(const es_query_set *qs, const char *emotion);

/* Reads a prompt file: one prompt per line, exactly as written (only the line end
 * "\n" or "\r\n" removed); blank lines and lines starting with '#' are skipped.
 * On success *prompts is a malloc'ed array of *n malloc'ed strings; free with
 * es_prompts_free. An empty file or a line over 65536 bytes is ES_ERR_FORMAT. */
es_status es_prompts_load(const char *path, char ***prompts, int *n);
void es_prompts_free(char **prompts, int n);

#endif /* ES_QUERIES_H */
