/* test_eval_io.c — SHA-256 against the FIPS 180-4 / NIST example vectors,
 * generations.jsonl (round trip, resume bookkeeping, a crash-truncated last line,
 * malformed lines), results.json write/read round trip and malformed files,
 * summary.csv, and the side-by-side compare. */
#include "eval_io.h"
#include "sha256.h"
#include "testutil.h"
#include "util_evalsynth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void append_file(const char *path, const char *text) {
    FILE *f = fopen(path, "ab");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ---- SHA-256 ---------------------------------------------------------------------- */

static void hex_of(const void *data, size_t n, char hex[65]) {
    uint8_t d[32];
    es_sha256(data, n, d);
    es_sha256_hex(d, hex);
}

static void test_sha256(void) {
    static const struct {
        const char *msg, *hex;
    } vec[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
         "mnopqrs"
         "mnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        hex_of(vec[i].msg, strlen(vec[i].msg), hex);
        CHECK(!strcmp(hex, vec[i].hex), "sha256 vector %zu: %s", i, hex);
    }
    /* one million 'a', fed in odd chunk sizes (FIPS 180-2 appendix B.3) */
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    es_sha256_ctx s;
    es_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t take = step < n - off ? step : n - off;
        es_sha256_update(&s, a + off, take);
        off += take;
        step = step * 3 % 1000 + 1;
    }
    uint8_t d[32];
    es_sha256_final(&s, d);
    es_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
          "sha256 million a: %s", hex);
    /* lengths around the padding boundary (55, 56, 63, 64, 65): incremental == one-shot */
    for (size_t len = 50; len < 130; len++) {
        char h1[65], h2[65];
        hex_of(a, len, h1);
        es_sha256_init(&s);
        for (size_t i = 0; i < len; i++)
            es_sha256_update(&s, a + i, 1);
        es_sha256_final(&s, d);
        es_sha256_hex(d, h2);
        if (!CHECK(!strcmp(h1, h2), "byte-wise update at length %zu", len)) break;
    }
    const char *path = tmp("million.txt");
    FILE *f = fopen(path, "wb");
    fwrite(a, 1, n, f);
    fclose(f);
    CHECK(es_sha256_file(path, hex) == ES_OK &&
              !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
          "sha256 of a file");
    CHECK(es_sha256_file(tmp("no-such-file"), hex) == ES_ERR_IO &&
              strstr(es_last_error(), "no-such-file"),
          "missing file names the path: %s", es_last_error());
    free(a);
}

/* ---- generations.jsonl -------------------------------------------------------------- */

static const char *labels3[] = {"anger", "joy", "neutral"};

static es_gen_record make_rec(const char *emotion, double alpha, const char *qid, int sample,
                              const char *response, double *scores) {
    es_gen_record r = es_gen_record_empty();
    r.emotion = (char *)emotion;
    r.alpha = alpha;
    r.query_id = (char *)qid;
    r.sample = sample;
    r.seed = 1000 + (uint64_t)sample;
    r.prompt = (char *)"How was the trip?";
    r.response = (char *)response;
    r.n_tokens = 12;
    if (scores) {
        r.scores = scores;
        r.n_labels = 3;
    }
    r.ppl = 12.5;
    return r;
}

static void test_genlog(void) {
    const char *path = tmp("gen.jsonl");
    unlink(path);
    es_genlog *log = NULL;
    CHECK(es_genlog_open(path, labels3, 3, true, &log) == ES_OK, "open new: %s", es_last_error());
    if (!log) return;
    double sc[3] = {0.1, 0.2, 0.7};
    es_gen_record r1 = make_rec("joy", 1.0, "neutral-0001", 0, "It was lovely.", sc);
    es_gen_record r2 =
        make_rec("joy", 1.0, "neutral-0001", 1, "Bad \xff byte \"quoted\"\nnew line", NULL);
    es_gen_record r3 = make_rec("anger", -0.5, "neutral-0002", 0, "", sc);
    r3.seed = UINT64_MAX; /* above 2^63: written as a string */
    CHECK(es_genlog_append(log, &r1) == ES_OK && es_genlog_append(log, &r2) == ES_OK &&
              es_genlog_append(log, &r3) == ES_OK,
          "append 3: %s", es_last_error());
    CHECK(es_genlog_append(log, &r1) == ES_ERR_INVALID_ARG && strstr(es_last_error(), "already"),
          "duplicate append rejected: %s", es_last_error());
    CHECK(es_genlog_done(log, "joy", 1.0000000001, "neutral-0001", 1), "alpha rounded to 9 digits");
    CHECK(!es_genlog_done(log, "joy", 1.001, "neutral-0001", 1), "other alpha not done");
    uint64_t s1 = es_eval_seed(5, "joy", 1.0, "neutral-0001", 0);
    CHECK(s1 == es_eval_seed(5, "joy", 1.0000000001, "neutral-0001", 0) &&
              s1 != es_eval_seed(6, "joy", 1.0, "neutral-0001", 0) &&
              s1 != es_eval_seed(5, "joy", 1.0, "neutral-0001", 1) &&
              s1 != es_eval_seed(5, "joy", 2.0, "neutral-0001", 0) &&
              s1 != es_eval_seed(5, "fear", 1.0, "neutral-0001", 0) &&
              s1 != es_eval_seed(5, "joy", 1.0, "neutral-0002", 0),
          "es_eval_seed depends on every key part");
    /* pinned: a change would make resumed runs draw different samples */
    CHECK(s1 == 10026838740336646498ull, "es_eval_seed value is stable: %llu",
          (unsigned long long)s1);
    printf("es_eval_seed(5, joy, 1, neutral-0001, 0) = %llu\n", (unsigned long long)s1);
    es_genlog_free(log);

    /* reopen read-only with labels in another order */
    const char *labels2[] = {"neutral", "joy"};
    log = NULL;
    CHECK(es_genlog_open(path, labels2, 2, false, &log) == ES_OK, "reopen: %s", es_last_error());
    if (!log) return;
    es_genlog_info info;
    es_genlog_get_info(log, &info);
    CHECK(info.n_records == 3 && info.n_lines_read == 3 && info.dropped_bytes == 0 &&
              info.n_duplicates == 0,
          "reopened: %zu records", info.n_records);
    const es_gen_record *rec = es_genlog_records(log);
    CHECK(rec[0].n_labels == 2 && rec[0].scores[0] == 0.7 && rec[0].scores[1] == 0.2,
          "scores mapped by name: %g %g", rec[0].scores ? rec[0].scores[0] : -1,
          rec[0].scores ? rec[0].scores[1] : -1);
    CHECK(!rec[1].scores && !strcmp(rec[1].response, "Bad \xEF\xBF\xBD byte \"quoted\"\nnew line"),
          "invalid UTF-8 replaced, quotes and newline kept: %s", rec[1].response);
    CHECK(rec[2].seed == UINT64_MAX && rec[2].alpha == -0.5 && !strcmp(rec[2].response, ""),
          "seed 2^64-1 round trip");
    CHECK(rec[0].ppl == 12.5 && isnan(rec[0].topic) && isnan(rec[0].valence) &&
              rec[0].n_tokens == 12,
          "numbers and nulls");
    CHECK(es_genlog_done(log, "anger", -0.5, "neutral-0002", 0) &&
              !es_genlog_done(log, "anger", -0.5, "neutral-0002", 1),
          "done bookkeeping");
    es_genlog_free(log);

    /* a crash cut the last line short: it is dropped, the file cut, appends continue */
    const char *torn = "{\"emotion\":\"joy\",\"alpha\":2,\"query_id\":\"neutral-0003\",\"sam";
    append_file(path, torn);
    log = NULL;
    CHECK(es_genlog_open(path, labels3, 3, true, &log) == ES_OK, "open with torn tail: %s",
          es_last_error());
    if (!log) return;
    es_genlog_get_info(log, &info);
    CHECK(info.n_records == 3 && info.dropped_bytes == strlen(torn),
          "torn tail dropped: %zu records, %zu bytes", info.n_records, info.dropped_bytes);
    CHECK(!es_genlog_done(log, "joy", 2, "neutral-0003", 0), "torn record not done");
    es_gen_record r4 = make_rec("joy", 2, "neutral-0003", 0, "Again!", sc);
    CHECK(es_genlog_append(log, &r4) == ES_OK, "append after recovery");
    es_genlog_free(log);
    log = NULL;
    CHECK(es_genlog_open(path, labels3, 3, false, &log) == ES_OK, "reopen after recovery: %s",
          es_last_error());
    if (log) {
        es_genlog_get_info(log, &info);
        CHECK(info.n_records == 4 && info.dropped_bytes == 0, "4 clean records: %zu, dropped %zu",
              info.n_records, info.dropped_bytes);
        es_genlog_free(log);
    }

    /* the last line is good but lacks its newline: appending must not glue lines */
    const char *p2 = tmp("gen2.jsonl");
    write_file(p2, "\n{\"emotion\":\"fear\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,"
                   "\"response\":\"boo\"}");
    log = NULL;
    CHECK(es_genlog_open(p2, NULL, 0, true, &log) == ES_OK, "no trailing newline: %s",
          es_last_error());
    if (log) {
        es_gen_record r5 = make_rec("fear", 2, "q", 0, "boo!", NULL);
        CHECK(es_genlog_append(log, &r5) == ES_OK, "append");
        es_genlog_free(log);
        log = NULL;
        CHECK(es_genlog_open(p2, NULL, 0, false, &log) == ES_OK, "reopen: %s", es_last_error());
        if (log) {
            es_genlog_get_info(log, &info);
            CHECK(info.n_records == 2, "2 records after newline fix: %zu", info.n_records);
            es_genlog_free(log);
        }
    }

    /* a malformed line in the middle is an error naming file and line */
    const char *p3 = tmp("gen3.jsonl");
    write_file(
        p3,
        "{\"emotion\":\"fear\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,\"response\":\"a\"}\n"
        "{\"emotion\":\"fear\",\"alpha\":\"x\",\"query_id\":\"q\",\"sample\":1,\"response\":\"b\"}"
        "\n"
        "{\"emotion\":\"fear\",\"alpha\":1,\"query_id\":\"q\",\"sample\":2,\"response\":\"c\"}\n");
    log = NULL;
    CHECK(es_genlog_open(p3, NULL, 0, false, &log) == ES_ERR_FORMAT && !log, "bad middle line");
    CHECK(strstr(es_last_error(), "gen3.jsonl:2") && strstr(es_last_error(), "alpha"),
          "message names file:line and key: %s", es_last_error());
    write_file(
        p3,
        "{\"emotion\":\"fear\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,\"response\":\"a\"}\n"
        "not json at all\n\n"
        "{\"emotion\":\"fear\",\"alpha\":1,\"query_id\":\"q\",\"sample\":2,\"response\":\"c\"}\n");
    CHECK(es_genlog_open(p3, NULL, 0, false, &log) == ES_ERR_FORMAT &&
              strstr(es_last_error(), "gen3.jsonl:2") && strstr(es_last_error(), "invalid JSON"),
          "garbage line: %s", es_last_error());
    /* a duplicate key in the file: first kept */
    write_file(
        p3,
        "{\"emotion\":\"fear\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,\"response\":\"a\"}\n"
        "{\"emotion\":\"fear\",\"alpha\":1.0,\"query_id\":\"q\",\"sample\":0,\"response\":\"b\"}"
        "\n");
    log = NULL;
    CHECK(es_genlog_open(p3, NULL, 0, false, &log) == ES_OK, "duplicates: %s", es_last_error());
    if (log) {
        es_genlog_get_info(log, &info);
        CHECK(info.n_records == 1 && info.n_duplicates == 1 &&
                  !strcmp(es_genlog_records(log)[0].response, "a"),
              "first of duplicates kept");
        es_genlog_free(log);
    }
    /* required keys and types */
    es_gen_record out;
    const char *bad[] = {
        "{\"alpha\":1,\"query_id\":\"q\",\"sample\":0,\"response\":\"a\"}",
        "{\"emotion\":\"\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,\"response\":\"a\"}",
        "{\"emotion\":\"x\",\"alpha\":1,\"query_id\":\"q\",\"sample\":-1,\"response\":\"a\"}",
        "{\"emotion\":\"x\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0}",
        "{\"emotion\":\"x\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,\"response\":\"a\","
        "\"scores\":{\"joy\":\"hi\"}}",
        "{\"emotion\":\"x\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,\"response\":\"a\",\"ppl\":"
        "\"hi\"}",
        "{\"emotion\":\"x\",\"emotion\":\"y\",\"alpha\":1,\"query_id\":\"q\",\"sample\":0,"
        "\"response\":\"a\"}",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(es_gen_record_from_json(bad[i], strlen(bad[i]), labels3, 3, &out) == ES_ERR_FORMAT,
              "bad record %zu rejected", i);
}

/* ---- results.json, csv, compare --------------------------------------------------- */

static double cmp_stat(const es_stat *a, const es_stat *b) {
    double d = 0;
    const double x[4] = {a->mean, a->sd, a->ci_lo, a->ci_hi},
                 y[4] = {b->mean, b->sd, b->ci_lo, b->ci_hi};
    for (int i = 0; i < 4; i++) {
        if (isnan(x[i]) != isnan(y[i])) return INFINITY;
        if (!isnan(x[i])) d = fmax(d, fabs(x[i] - y[i]) / fmax(1, fabs(x[i])));
    }
    return a->n == b->n ? d : INFINITY;
}

static void test_results_json(void) {
    es_eval_results *r = es_synth_results(6, 0.12, 42, "demo-16m");
    CHECK(r != NULL, "synthetic results: %s", es_last_error());
    if (!r) return;
    const char *path = tmp("results.json");
    CHECK(es_results_write_json(r, path) == ES_OK, "write results.json: %s", es_last_error());
    es_eval_results *back = NULL;
    CHECK(es_results_read_json(path, &back) == ES_OK, "read results.json: %s", es_last_error());
    if (back) {
        double worst = 0;
        CHECK(back->n_emotions == 5 && back->n_alphas == 5 && back->n_labels == 6 &&
                  back->neutral == 5,
              "shape back");
        for (int e = 0; e < 5; e++)
            for (int a = 0; a < 5; a++) {
                const es_eval_cell *x = es_eval_cell_at(r, e, a), *y = es_eval_cell_at(back, e, a);
                worst = fmax(worst, cmp_stat(&x->target_prob, &y->target_prob));
                worst = fmax(worst, cmp_stat(&x->eas, &y->eas));
                worst = fmax(worst, cmp_stat(&x->rep4, &y->rep4));
                worst = fmax(worst, cmp_stat(&x->topic, &y->topic));
                worst = fmax(worst, fabs(x->degenerate_share - y->degenerate_share));
                worst = fmax(worst, fabs(x->ppl - y->ppl) / x->ppl);
                const double *c1 = es_eval_confusion_row(r, a, e),
                             *c2 = es_eval_confusion_row(back, a, e);
                for (int l = 0; l < 6; l++)
                    worst = fmax(worst, fabs(c1[l] - c2[l]));
            }
        for (int e = 0; e < 5; e++) {
            worst = fmax(worst, fabs(r->linearity[e].slope - back->linearity[e].slope));
            worst = fmax(worst, fabs(r->linearity[e].r2 - back->linearity[e].r2));
        }
        printf("results.json round trip: max relative difference %.3g\n", worst);
        CHECK(worst < 1e-8, "round trip max diff %.3g", worst);
        CHECK(back->n_samples == r->n_samples &&
                  !strcmp(back->samples[0].response, r->samples[0].response),
              "samples back");
        CHECK(back->settings.seed == 42 && !strcmp(back->settings.hook, "block_out") &&
                  back->settings.n_extra == 2 &&
                  !strcmp(back->settings.extra[1].value, "x < y & z"),
              "settings back");
        CHECK(back->lin_alpha_lo == 0 && back->lin_alpha_hi == 2, "linearity range back");
        es_eval_results_free(back);
    }

    /* summary.csv: header + 25 rows, 19 columns each */
    const char *csv = tmp("summary.csv");
    CHECK(es_results_write_csv(r, csv) == ES_OK, "write csv");
    char *text = es_test_read_file(csv, NULL);
    if (text) {
        int lines = 0, bad_cols = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            int commas = 0;
            for (char *c = line; *c; c++)
                commas += *c == ',';
            bad_cols += commas != 18;
            lines++;
        }
        CHECK(lines == 26 && bad_cols == 0, "csv: %d lines, %d with the wrong column count", lines,
              bad_cols);
        free(text);
    }

    /* compare: both files, side by side */
    es_eval_results *r2 = es_synth_results(6, 0.2, 7, "other-model");
    const char *path2 = tmp("results2.json");
    CHECK(r2 && es_results_write_json(r2, path2) == ES_OK, "second results");
    const char *cmp = tmp("compare.txt");
    FILE *f = fopen(cmp, "w");
    CHECK(es_results_compare_files(path, path2, f) == ES_OK, "compare: %s", es_last_error());
    fclose(f);
    text = es_test_read_file(cmp, NULL);
    CHECK(text && strstr(text, "demo-16m") && strstr(text, "other-model") &&
              strstr(text, "slope") && strstr(text, "sadness") && strstr(text, "a=4"),
          "compare table content");
    if (text) printf("--- compare output ---\n%s---\n", text);
    free(text);
    es_eval_results_free(r2);

    /* malformed files: the message names the file and the problem */
    struct {
        const char *json, *want;
    } bad[] = {
        {"{not json", "invalid JSON"},
        {"[1]", "expected an object"},
        {"{\"format\":\"something-else\"}", "format"},
        {"{\"format\":\"emosteer-results/1\",\"labels\":[],\"alphas\":[0]}", "emotions: missing"},
        {"{\"format\":\"emosteer-results/"
         "1\",\"emotions\":[\"joy\",3],\"labels\":[],\"alphas\":[0]}",
         "emotions[1]"},
        {"{\"format\":\"emosteer-results/"
         "1\",\"emotions\":[\"joy\"],\"labels\":[],\"alphas\":[1,0]}",
         "ascending"},
        {"{\"format\":\"emosteer-results/1\",\"emotions\":[\"joy\"],\"labels\":[],\"alphas\":[0],"
         "\"cells\":[{\"emotion\":\"joy\",\"alpha\":\"zero\",\"n\":1}]}",
         "cells[0].alpha"},
        {"{\"format\":\"emosteer-results/1\",\"emotions\":[\"joy\"],\"labels\":[],\"alphas\":[0],"
         "\"cells\":[{\"emotion\":\"joy\",\"alpha\":0,\"n\":1,\"target_prob\":{\"mean\":\"x\"}}]}",
         "cells[0].target_prob.mean"},
        {"{\"format\":\"emosteer-results/"
         "1\",\"emotions\":[\"joy\"],\"labels\":[\"joy\"],\"alphas\":[0],"
         "\"cells\":[],\"confusion\":[{\"alpha\":0,\"counts\":[[1,2]]}]}",
         "confusion[0].counts[0]"},
        {"{\"format\":\"emosteer-results/2\"}", "not emosteer-results/1"},
    };
    const char *bp = tmp("bad-results.json");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bp, bad[i].json);
        es_eval_results *x = NULL;
        es_status st = es_results_read_json(bp, &x);
        CHECK(st != ES_OK && !x && strstr(es_last_error(), "bad-results.json") &&
                  strstr(es_last_error(), bad[i].want),
              "malformed %zu: %s", i, es_last_error());
        es_eval_results_free(x);
    }
    f = fopen("/dev/null", "w");
    CHECK(es_results_compare_files(path, bp, f) != ES_OK &&
              strstr(es_last_error(), "bad-results.json"),
          "compare names the bad file: %s", es_last_error());
    CHECK(es_results_compare_files(tmp("missing.json"), path, f) == ES_ERR_IO &&
              strstr(es_last_error(), "missing.json"),
          "compare names the missing file: %s", es_last_error());
    fclose(f);
    es_eval_results_free(r);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/es_test_eval_io_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_sha256();
    test_genlog();
    test_results_json();
    int rc = es_test_finish();
    if (rc == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        fprintf(stderr, "files kept in %s\n", tmpdir);
    }
    return rc;
}
