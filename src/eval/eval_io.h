/*
 * eval_io.h — the files `emosteer eval` writes and reads back:
 *
 *   generations.jsonl  one JSON object per line per generated response (es_gen_record),
 *                      appended and flushed as each finishes, so that a crashed or
 *                      stopped run resumes where it was (es_genlog).
 *   results.json       every number of es_eval_results plus the settings and hashes
 *                      (es_results_write_json / es_results_read_json).
 *   summary.csv        one row per emotion x alpha (es_results_write_csv).
 *
 * and `emosteer eval --compare A/results.json B/results.json` (es_results_compare).
 *
 * generations.jsonl line (keys in this order; numbers that are NaN are written null;
 * optional keys may be absent when read):
 *   {"emotion":"joy","alpha":1.5,"query_id":"neutral-0042","sample":0,
 *    "seed":1234,"prompt":"...","response":"...","n_tokens":57,
 *    "scores":{"anger":0.1,...,"neutral":0.5},"valence":0.31,"ppl":12.3,"topic":0.8}
 *   required: emotion (non-empty string), alpha (finite number), query_id (string),
 *   sample (integer >= 0), response (string). Optional: seed (integer >= 0, or a
 *   decimal string for values above 2^63), prompt (string), n_tokens (integer),
 *   scores (object of label -> number or null), valence, ppl, topic (number or null).
 *   Text that is not valid UTF-8 is written with each bad byte replaced by U+FFFD.
 *
 * A record's key is (emotion, alpha, query_id, sample); alphas are compared after
 * rounding to 9 significant digits.
 */
#ifndef ES_EVAL_IO_H
#define ES_EVAL_IO_H

#include "eval_metrics.h"
#include "utf8.h"

#include <stdio.h>

/* ------------------------------------------------------------------------- */
/* generations.jsonl                                                         */
/* ------------------------------------------------------------------------- */

typedef struct es_genlog es_genlog;

/* Opens the generation log at `path` for resuming.
 *
 * Reads every record already in the file (a missing file is an empty log). labels
 * [n_labels] are the scorer labels: each record's "scores" object is read into that
 * order (a missing label reads NaN, unknown labels are ignored); n_labels may be 0.
 * Empty lines are skipped. When the LAST line of the file does not parse — the
 * remains of a write cut short by a crash — it is dropped and counted in
 * es_genlog_info's dropped_bytes; a malformed line before the last is ES_ERR_FORMAT
 * naming "path:line" and the problem. A record whose key was already seen is
 * dropped (the first is kept) and counted as a duplicate.
 *
 * If `writable`, the file is then cut just after its last good line (dropping the
 * broken tail), created if missing, and held open for es_genlog_append.
 * On success *out owns the records and the file; free with es_genlog_free. */
es_status es_genlog_open(const char *path, const char *const *labels, int n_labels, bool writable,
                         es_genlog **out);

/* Closes the file (if open) and frees everything. NULL is a no-op. */
void es_genlog_free(es_genlog *log);

typedef struct es_genlog_info {
    size_t n_records;     /* records held (read + appended) */
    size_t n_lines_read;  /* non-empty lines read from the file */
    size_t n_duplicates;  /* lines dropped because their key was already present */
    size_t dropped_bytes; /* bytes of an unparseable last line dropped (0 if none) */
    size_t valid_bytes;   /* file length up to and including the last good line */
} es_genlog_info;

void es_genlog_get_info(const es_genlog *log, es_genlog_info *info);

/* The records, in file order then append order: [n_records]. Borrowed; valid until
 * the next es_genlog_append or es_genlog_free. */
const es_gen_record *es_genlog_records(const es_genlog *log);

/* True if a record with this key is present. */
bool es_genlog_done(const es_genlog *log, const char *emotion, double alpha, const char *query_id,
                    int sample);

/* The sampler seed of one draw: a hash of (base, emotion, alpha rounded as in the key,
 * query_id, sample), so a draw gets the same seed whatever the batching, the order or
 * the number of resumptions. */
uint64_t es_eval_seed(uint64_t base, const char *emotion, double alpha, const char *query_id,
                      int sample);

/* Adds a copy of rec. If the log was opened writable the record is also written as
 * one line and flushed before returning. A record whose key is already present is
 * ES_ERR_INVALID_ARG naming it; a record with scores must have n_labels equal to the
 * log's. */
es_status es_genlog_append(es_genlog *log, const es_gen_record *rec);

/* One record as a JSON line without the newline (malloc'ed, caller frees).
 * labels[n_labels] name the scores (rec->n_labels must equal n_labels if scored). */
es_status es_gen_record_to_json(const es_gen_record *rec, const char *const *labels, int n_labels,
                                char **out);

/* Parses one JSON line into *rec (owned by the caller, es_gen_record_clear). On
 * ES_ERR_FORMAT the message names the problem (without any file name). */
es_status es_gen_record_from_json(const char *line, size_t len, const char *const *labels,
                                  int n_labels, es_gen_record *rec);

/* ------------------------------------------------------------------------- */
/* results.json, summary.csv, compare                                        */
/* ------------------------------------------------------------------------- */

#define ES_RESULTS_FORMAT "emosteer-results/1"

/* Writes results.json (pretty-printed, keys in a fixed order). See eval_results.c for
 * the layout. */
es_status es_results_write_json(const es_eval_results *r, const char *path);

/* Reads a results.json written by es_results_write_json. Any malformed part is
 * ES_ERR_FORMAT with a message naming the file and the JSON path of the problem
 * ("B/results.json: cells[3].alpha: expected a number"). *out owned by the caller. */
es_status es_results_read_json(const char *path, es_eval_results **out);

/* The same from memory; `name` stands for the file in messages. */
es_status es_results_parse(const char *json, size_t len, const char *name, es_eval_results **out);

/* Writes summary.csv: a header, then one row per emotion x alpha with the columns
 *   emotion,alpha,n,target_prob_mean,target_prob_sd,target_prob_ci_lo,target_prob_ci_hi,
 *   eas_mean,eas_sd,eas_delta,valence_mean,distinct2_mean,distinct2_sd,rep4_mean,rep4_sd,
 *   degenerate_share,ppl,topic_mean,topic_sd
 * NaN is an empty field. */
es_status es_results_write_csv(const es_eval_results *r, const char *path);

/* Writes to `out` a side-by-side text table of two results: settings (model, hashes,
 * method, hook, layers, scorer), then per emotion the mean target prob at each alpha of
 * either run, then slope and R^2. name_a / name_b head the columns (e.g. the paths). */
es_status es_results_compare(const es_eval_results *a, const char *name_a, const es_eval_results *b,
                             const char *name_b, FILE *out);

/* Reads both files and compares them: errors name the file that failed. */
es_status es_results_compare_files(const char *path_a, const char *path_b, FILE *out);

/* ------------------------------------------------------------------------- */
/* Text helpers shared with report.c                                         */
/* ------------------------------------------------------------------------- */


#endif /* ES_EVAL_IO_H */
