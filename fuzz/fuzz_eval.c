/*
 * fuzz_eval.c — fuzzes the evaluation's parsers and text code with one input read as:
 * a generations.jsonl record (es_gen_record_from_json), a query set
 * (es_query_set_parse), a results.json (es_results_parse; a parsed one is then
 * rendered with es_report_html and written back with es_results_write_json to
 * /dev/null), and a model response (es_text_fluency_of, es_html_escape,
 * es_utf8_sanitize).
 *
 * Invariants checked (abort on violation): a parsed record round-trips through
 * es_gen_record_to_json; every report and every escaped text is free of a raw '<'
 * from the input (no "<script" anywhere in a report); rep-4 and distinct-2 are in
 * [0, 1]; sanitised text is valid UTF-8 (re-sanitising changes nothing).
 *
 * Seeds: a results.json of a small summarised run, a JSONL line and a query file,
 * generated into a temporary folder; built in: a JSONL line.
 */
#include "emosteer.h"
#include "eval_io.h"
#include "fuzz_seeds.h"
#include "queries.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_labels[] = {"anger", "joy", "neutral"};

static void check_record(const uint8_t *data, size_t size) {
    es_gen_record r;
    if (es_gen_record_from_json((const char *)data, size, k_labels, 3, &r) != ES_OK) return;
    char *line = NULL;
    if (es_gen_record_to_json(&r, k_labels, 3, &line) != ES_OK) abort();
    es_gen_record back;
    if (es_gen_record_from_json(line, strlen(line), k_labels, 3, &back) != ES_OK) abort();
    if (back.sample != r.sample || back.seed != r.seed) abort();
    es_gen_record_clear(&back);
    es_gen_record_clear(&r);
    free(line);
}

static void check_text(const char *text) {
    es_text_fluency f;
    if (es_text_fluency_of(text, NULL, &f) != ES_OK) abort();
    if (!(f.rep4 >= 0 && f.rep4 <= 1) ||
        (!isnan(f.distinct2) && !(f.distinct2 > 0 && f.distinct2 <= 1)))
        abort();
    char *esc = es_html_escape(text);
    if (!esc || strchr(esc, '<') || strchr(esc, '>') || strchr(esc, '"')) abort();
    free(esc);
    char *clean = es_utf8_sanitize(text);
    char *again = clean ? es_utf8_sanitize(clean) : NULL;
    if (!again || strcmp(clean, again)) abort();
    free(clean);
    free(again);
}

static void check_results(const uint8_t *data, size_t size) {
    es_eval_results *r = NULL;
    if (es_results_parse((const char *)data, size, "fuzz.json", &r) != ES_OK) return;
    char *html = NULL;
    if (es_report_html(r, NULL, &html, NULL) != ES_OK) abort();
    if (strstr(html, "<script")) abort();
    free(html);
    if (es_results_write_json(r, "/dev/null") != ES_OK) abort();
    es_eval_results_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_record(data, size);
    es_query_set *qs = NULL;
    if (es_query_set_parse((const char *)data, size, "fuzz.json", &qs) == ES_OK) {
        for (int i = 0; i < qs->n_lists; i++)
            if (qs->lists[i].n < 0 ||
                (qs->lists[i].n == 0 && !qs->lists[i].system && !qs->lists[i].prefix))
                abort();
        es_query_set_free(qs);
    }
    check_results(data, size);
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_text(text);
    free(text);
    return 0;
}

static char g_seed_dir[64];

static void remove_seeds(void) {
    char path[4096];
    const char *names[] = {"results.json", "gen.jsonl", "queries.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_seed_dir, names[i]);
        unlink(path);
    }
    rmdir(g_seed_dir);
}

int es_fuzz_seed_paths(char paths[][4096], int max) {
    snprintf(g_seed_dir, sizeof g_seed_dir, "/tmp/es_fuzz_eval_XXXXXX");
    if (max < 3 || mkdtemp(g_seed_dir) == NULL) return 0;
    atexit(remove_seeds);
    int n = 0;
    /* a small run: 2 emotions x 2 alphas, one record each */
    double sc[4][3] = {{0.1, 0.2, 0.7}, {0.0, 0.6, 0.4}, {0.5, 0.1, 0.4}, {0.2, 0.2, 0.6}};
    es_gen_record recs[4];
    for (int i = 0; i < 4; i++) {
        recs[i] = es_gen_record_empty();
        recs[i].emotion = (char *)(i < 2 ? "joy" : "anger");
        recs[i].alpha = i % 2 ? 2.0 : 0.0;
        recs[i].query_id = (char *)"neutral-0001";
        recs[i].prompt = (char *)"How do I fold a fitted sheet?";
        recs[i].response =
            (char *)(i == 3 ? "<b>so so so so angry</b> & more" : "Gently, corner to corner.");
        recs[i].scores = sc[i];
        recs[i].n_labels = 3;
        recs[i].ppl = 10 + i;
        recs[i].topic = 0.5;
    }
    es_eval_results *r = NULL;
    if (es_eval_summarize(recs, 4, NULL, 0, NULL, 0, k_labels, 3, NULL, NULL, &r) == ES_OK) {
        snprintf(paths[n], 4096, "%s/results.json", g_seed_dir);
        if (es_results_write_json(r, paths[n]) == ES_OK) n++;
        es_eval_results_free(r);
    }
    char *line = NULL;
    if (es_gen_record_to_json(&recs[3], k_labels, 3, &line) == ES_OK) {
        snprintf(paths[n], 4096, "%s/gen.jsonl", g_seed_dir);
        FILE *f = fopen(paths[n], "w");
        if (f) {
            fputs(line, f);
            fclose(f);
            n++;
        }
        free(line);
    }
    snprintf(paths[n], 4096, "%s/queries.json", g_seed_dir);
    FILE *f = fopen(paths[n], "w");
    if (f) {
        fputs("{\"format\": \"emosteer-queries/1\", \"queries\": {\"joy\": [\"How did you feel?\", "
              "\"Why?\"],"
              " \"neutral\": [\"How do tides work?\"]}, \"instructions\": {\"joy\": {\"system\": "
              "\"Be glad.\","
              " \"prefix\": \"I am happy!\"}}}",
              f);
        fclose(f);
        n++;
    }
    return n;
}

const uint8_t *es_fuzz_builtin_seed(size_t *n) {
    static const char seed[] =
        "{\"emotion\":\"joy\",\"alpha\":1.5,\"query_id\":\"q\",\"sample\":0,\"seed\":7,"
        "\"response\":\"I \\u00e9 <script>\",\"scores\":{\"joy\":0.5,\"anger\":null},"
        "\"ppl\":3}";
    *n = sizeof seed - 1;
    return (const uint8_t *)seed;
}
