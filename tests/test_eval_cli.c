/*
 * test_eval_cli.c — `emosteer eval` ($ES_BIN) on the demo model (models/demo-16m.q8_0.gguf,
 * models/demo-16m.ev.gguf): a tiny grid (joy, anger x alphas {0, 2} x 3 queries, -n 12)
 * writes generations.jsonl, results.json, summary.csv and report.html; results.json
 * reads back with the expected cells, hashes and per-record numbers; the generations do
 * not depend on the batch size (scores to 1e-6); --resume generates nothing for a finished run and
 * completes a run cut short (a torn last line included) to the same responses; greedy
 * decoding shows each sequence of a batch gets its own steering; bad inputs exit 2
 * (usage) or 1 (runtime) with a message naming the problem and leave no results.json;
 * --judge puts the judge's scores in results.json and the lexicon's, unchanged, in
 * results-lexicon.json; --compare prints a table; Chromium renders the report.
 */
#include "eval_io.h"
#include "sha256.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin;
static char model[1024], ev[1024], tmp[256];

/* Runs `emosteer eval -m MODEL --ev EV <args>` with stderr merged into out. */
static int eval(const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' eval -m '%s' --ev '%s' -t 2 %s 2>&1", bin, model, ev, args);
    return es_test_run_cmd(cmd, out, cap);
}

static bool exists(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static es_genlog *open_log(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/generations.jsonl", dir);
    es_genlog *log = NULL;
    if (es_genlog_open(p, es_eval_lexicon_labels, ES_EMO_N_LABELS, false, &log) != ES_OK) {
        CHECK(false, "%s: %s", p, es_last_error());
        return NULL;
    }
    return log;
}

/* Scores agree to 1e-4 relative: the kernels may sum in another order when sequences
 * are packed into batches differently (seen: perplexity 23.01931142 vs 23.01931263). */
static bool nearly(double a, double b) {
    return (isnan(a) && isnan(b)) || fabs(a - b) <= 1e-4 * fmax(1.0, fabs(a));
}

/* Every record of a has a record with the same key, seed, response, perplexity (and
 * topic score if `topic`) in b. */
static int same_generations(const char *da, const char *db, const char *what, bool topic) {
    es_genlog *a = open_log(da), *b = open_log(db);
    int same = -1;
    if (a && b) {
        es_genlog_info ia, ib;
        es_genlog_get_info(a, &ia);
        es_genlog_get_info(b, &ib);
        const es_gen_record *ra = es_genlog_records(a), *rb = es_genlog_records(b);
        same = 0;
        for (size_t i = 0; ia.n_records == ib.n_records && i < ia.n_records; i++) {
            bool found = false;
            for (size_t k = 0; k < ib.n_records && !found; k++)
                found = !strcmp(ra[i].emotion, rb[k].emotion) && ra[i].alpha == rb[k].alpha &&
                        !strcmp(ra[i].query_id, rb[k].query_id) && ra[i].sample == rb[k].sample &&
                        ra[i].seed == rb[k].seed && !strcmp(ra[i].response, rb[k].response) &&
                        nearly(ra[i].ppl, rb[k].ppl) &&
                        (!topic || nearly(ra[i].topic, rb[k].topic));
            same += found;
        }
        CHECK(same == (int)ia.n_records, "%s: %zu vs %zu records, %d identical", what, ia.n_records,
              ib.n_records, same);
    }
    es_genlog_free(a);
    es_genlog_free(b);
    return same;
}

/* results.json of the tiny grid: shape, hashes, per-cell counts and sane numbers. */
static es_eval_results *check_results(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/results.json", dir);
    es_eval_results *r = NULL;
    if (!CHECK(es_results_read_json(p, &r) == ES_OK, "read %s: %s", p, es_last_error()))
        return NULL;
    CHECK(r->n_emotions == 2 && !strcmp(r->emotions[0], "joy") && !strcmp(r->emotions[1], "anger"),
          "emotions joy, anger");
    CHECK(r->n_alphas == 2 && r->alphas[0] == 0 && r->alphas[1] == 2, "alphas 0, 2");
    CHECK(r->n_labels == 6 && r->neutral == 5, "6 lexicon labels, neutral last");
    CHECK(r->n_records == 12 && r->n_ignored == 0, "12 records: %d (%d ignored)", r->n_records,
          r->n_ignored);
    char sha[ES_SHA256_HEX];
    CHECK(es_sha256_file(model, sha) == ES_OK && r->settings.model_sha256 &&
              !strcmp(sha, r->settings.model_sha256),
          "model SHA-256 recorded");
    CHECK(es_sha256_file(ev, sha) == ES_OK && r->settings.ev_sha256 &&
              !strcmp(sha, r->settings.ev_sha256),
          "EV SHA-256 recorded");
    CHECK(r->settings.max_tokens == 12 && r->settings.n_samples == 1 &&
              !strcmp(r->settings.hook, "block_out"),
          "settings: max_tokens %d, samples %d, hook %s", r->settings.max_tokens,
          r->settings.n_samples, r->settings.hook);
    double worst_ppl = 0, worst_topic = 0;
    for (int e = 0; e < r->n_emotions; e++)
        for (int a = 0; a < r->n_alphas; a++) {
            const es_eval_cell *c = es_eval_cell_at(r, e, a);
            CHECK(c->n == 3, "cell %d,%d has %d responses", e, a, c->n);
            CHECK(isfinite(c->target_prob.mean) && c->target_prob.mean >= 0 &&
                      c->target_prob.mean <= 1,
                  "target prob %g in [0, 1]", c->target_prob.mean);
            CHECK(isfinite(c->ppl) && c->ppl > 1 && c->ppl < 8192, "perplexity %g in (1, vocab)",
                  c->ppl);
            CHECK(isfinite(c->topic.mean) && fabs(c->topic.mean) <= 1, "topic %g in [-1, 1]",
                  c->topic.mean);
            CHECK(c->degenerate_share >= 0 && c->degenerate_share <= 1, "degenerate share");
            worst_ppl = fmax(worst_ppl, c->ppl);
            worst_topic = fmax(worst_topic, c->topic.mean);
        }
    printf("results: 4 cells of 3, max cell ppl %.2f, max topic %.3f, joy slope %.4f\n", worst_ppl,
           worst_topic, r->linearity[0].slope);
    return r;
}

static void test_runs(void) {
    char d1[512], d2[512], d3[512], args[2048], out[16384];
    snprintf(d1, sizeof d1, "%s/run1", tmp);
    snprintf(d2, sizeof d2, "%s/run_b1", tmp);
    snprintf(d3, sizeof d3, "%s/greedy", tmp);
    const char *grid = "--emotions joy,anger --alphas 0,2 --n-queries 3 -n 12";

    snprintf(args, sizeof args, "%s --batch 5 -o '%s'", grid, d1);
    int rc = eval(args, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "12 to generate"), "tiny run exit %d:\n%s", rc, out);
    CHECK(exists(d1, "generations.jsonl") && exists(d1, "results.json") &&
              exists(d1, "summary.csv") && exists(d1, "report.html"),
          "the four files");
    es_eval_results *r1 = check_results(d1);
    char p[1024];
    snprintf(p, sizeof p, "%s/summary.csv", d1);
    char *csv = es_test_read_file(p, NULL);
    int lines = 0;
    for (char *c = csv; c && *c; c++)
        lines += *c == '\n';
    CHECK(lines == 5 && !strncmp(csv, "emotion,alpha,n,", 16),
          "summary.csv: header + 4 rows (%d lines)", lines);
    free(csv);

    /* a finished run resumes to nothing and the same numbers */
    snprintf(args, sizeof args, "%s --batch 5 -o '%s' --resume", grid, d1);
    rc = eval(args, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "0 to generate"), "resume: exit %d, '0 to generate':\n%s", rc,
          out);
    es_eval_results *r1b = check_results(d1);
    if (r1 && r1b) {
        double diff = 0;
        for (int i = 0; i < 4; i++) {
            const es_eval_cell *a = &r1->cells[i], *b = &r1b->cells[i];
            diff = fmax(diff, fabs(a->target_prob.mean - b->target_prob.mean) +
                                  fabs(a->ppl - b->ppl) + fabs(a->topic.mean - b->topic.mean) +
                                  fabs(a->rep4.mean - b->rep4.mean));
        }
        CHECK(diff == 0, "resumed results identical: max diff %g", diff);
        printf("resume of a finished run: max cell difference %g\n", diff);
    }
    es_eval_results_free(r1b);

    /* batch size 1 gives the same responses, seeds, perplexities and topic scores */
    snprintf(args, sizeof args, "%s --batch 1 -o '%s'", grid, d2);
    rc = eval(args, out, sizeof out);
    CHECK(rc == 0, "batch-1 run exit %d:\n%s", rc, out);
    same_generations(d1, d2, "batch 5 vs batch 1", true);

    /* cut the log to 5 records and half a line, as a crash would: resume completes it */
    snprintf(p, sizeof p, "%s/generations.jsonl", d2);
    char *log = es_test_read_file(p, NULL);
    char *cut = log;
    for (int i = 0; cut && i < 5; i++)
        cut = strchr(cut, '\n') + 1;
    if (CHECK(cut != NULL, "log has 5 lines")) {
        cut += 30; /* inside the sixth line */
        FILE *f = fopen(p, "w");
        fwrite(log, 1, (size_t)(cut - log), f);
        fclose(f);
    }
    free(log);
    snprintf(args, sizeof args, "%s --batch 4 -o '%s' --resume", grid, d2);
    rc = eval(args, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "5 done, 7 to generate") && strstr(out, "cut-off last line"),
          "resume after a crash: exit %d:\n%s", rc, out);
    same_generations(d1, d2, "resumed after a crash vs one run", true);

    /* greedy: the unsteered sequences of a batch agree, the steered ones differ */
    snprintf(args, sizeof args, "%s --batch 12 --temp 0 -o '%s'", grid, d3);
    rc = eval(args, out, sizeof out);
    CHECK(rc == 0, "greedy run exit %d:\n%s", rc, out);
    es_genlog *g = open_log(d3);
    if (g) {
        es_genlog_info gi;
        es_genlog_get_info(g, &gi);
        const es_gen_record *rr = es_genlog_records(g);
        int same0 = 0, diff2 = 0;
        for (size_t i = 0; i < gi.n_records; i++)
            for (size_t k = 0; k < gi.n_records; k++)
                if (!strcmp(rr[i].emotion, "joy") && !strcmp(rr[k].emotion, "anger") &&
                    !strcmp(rr[i].query_id, rr[k].query_id) && rr[i].alpha == rr[k].alpha) {
                    bool same = !strcmp(rr[i].response, rr[k].response);
                    if (rr[i].alpha == 0)
                        same0 += same;
                    else
                        diff2 += !same;
                }
        CHECK(same0 == 3, "greedy alpha 0: joy and anger rows agree on %d of 3 queries", same0);
        CHECK(diff2 >= 2, "greedy alpha 2: joy and anger differ on %d of 3 queries", diff2);
        printf("greedy: alpha 0 rows agree on %d/3 queries, alpha 2 rows differ on %d/3\n", same0,
               diff2);
        es_genlog_free(g);
    }

    /* --judge (the demo model, a weak judge): judge scores in results.json, the lexicon's
     * in results-lexicon.json, equal to the run without a judge; topic in [0, 1] */
    char dj[512];
    snprintf(dj, sizeof dj, "%s/judge", tmp);
    snprintf(args, sizeof args, "%s --batch 5 -o '%s' --judge '%s'", grid, dj, model);
    rc = eval(args, out, sizeof out);
    CHECK(rc == 0 && exists(dj, "results-lexicon.json") && exists(dj, "summary-lexicon.csv"),
          "judge run exit %d:\n%s", rc, out);
    es_eval_results *rj = NULL, *rl = NULL;
    snprintf(p, sizeof p, "%s/results.json", dj);
    CHECK(es_results_read_json(p, &rj) == ES_OK && rj->settings.scorer &&
              !strncmp(rj->settings.scorer, "judge", 5),
          "judge results: %s", rj ? rj->settings.scorer : es_last_error());
    snprintf(p, sizeof p, "%s/results-lexicon.json", dj);
    CHECK(es_results_read_json(p, &rl) == ES_OK && !strncmp(rl->settings.scorer, "lexicon", 7),
          "lexicon results");
    if (rj && rl && r1) {
        double d_lex = 0, d_judge = 0;
        for (int i = 0; i < 4; i++) {
            d_lex =
                fmax(d_lex, fabs(rl->cells[i].target_prob.mean - r1->cells[i].target_prob.mean) +
                                fabs(rl->cells[i].eas.mean - r1->cells[i].eas.mean));
            d_judge =
                fmax(d_judge, fabs(rj->cells[i].target_prob.mean - rl->cells[i].target_prob.mean));
            CHECK(rj->cells[i].topic.mean >= 0 && rj->cells[i].topic.mean <= 1,
                  "judge topic %g in [0, 1]", rj->cells[i].topic.mean);
            CHECK(rj->cells[i].eas.mean > 0 && rj->cells[i].eas.mean < 1, "judge EAS %g in (0, 1)",
                  rj->cells[i].eas.mean);
        }
        CHECK(d_lex == 0, "lexicon results with and without a judge agree: %g", d_lex);
        CHECK(d_judge > 0, "judge scores differ from the lexicon's");
        printf("judge: lexicon results equal the judge-less run (diff %g); judge p(joy) at alpha 0 "
               "%.3f, topic %.3f\n",
               d_lex, rj->cells[0].target_prob.mean, rj->cells[0].topic.mean);
    }
    es_eval_results_free(rj);
    es_eval_results_free(rl);
    same_generations(d1, dj, "with and without a judge", false);
    /* a judge cannot join a run made without one: it scores topic adherence differently */
    snprintf(args, sizeof args, "%s -o '%s' --resume --judge '%s'", grid, d1, model);
    rc = eval(args, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "topic=cosine") && !exists(d1, "results-lexicon.json"),
          "adding a judge on resume exits 2: %d %s", rc, out);

    /* --compare */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' eval --compare '%s/results.json' '%s/results.json' 2>&1", bin,
             d1, d3);
    rc = es_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "joy") && strstr(out, "anger") && strstr(out, "R^2"),
          "compare exit %d:\n%s", rc, out);
    printf("--- eval --compare ---\n%s", out);
    snprintf(cmd, sizeof cmd, "'%s' eval --compare '%s/results.json' '%s/nope.json' 2>&1", bin, d1,
             d3);
    rc = es_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "nope.json"), "compare of a missing file exits 1 naming it: %d %s",
          rc, out);

    /* the real report through Chromium */
    char html[1024], png[1024], dom[1024];
    snprintf(html, sizeof html, "%s/report.html", d1);
    snprintf(png, sizeof png, "%s/report.png", tmp);
    snprintf(dom, sizeof dom, "%s/report.dom.html", tmp);
    char *page = es_test_read_file(html, NULL);
    CHECK(page && strstr(page, "id=\"emotion\"") && strstr(page, "id=\"fluency\"") &&
              strstr(page, "id=\"specificity\"") && strstr(page, "id=\"topic\"") &&
              !strstr(page, "<script"),
          "report.html has the four chart sections and no script");
    free(page);
    snprintf(cmd, sizeof cmd, "sh '%s/tests/report_screenshot.sh' '%s' '%s' '%s' 2>&1",
             es_test_source(), html, png, dom);
    rc = es_test_run_cmd(cmd, out, sizeof out);
    if (rc == 77) {
        printf("SKIP: Chromium check (no chromium)\n");
    } else {
        size_t n = 0;
        char *png_data = es_test_read_file(png, &n);
        CHECK(rc == 0 && png_data && n > 50000, "Chromium screenshot: exit %d, %zu bytes", rc, n);
        free(png_data);
        char *text = es_test_read_file(dom, NULL);
        size_t n_svg = 0, n_path = 0;
        for (const char *s = text; s && (s = strstr(s, "<svg")); s++)
            n_svg++;
        for (const char *s = text; s && (s = strstr(s, "<path")); s++)
            n_path++;
        CHECK(n_svg == 4 && n_path >= 8, "DOM after Chromium: %zu svg, %zu path", n_svg, n_path);
        printf("Chromium: report.png %zu bytes, DOM %zu svg, %zu path\n", n, n_svg, n_path);
        free(text);
    }
    es_eval_results_free(r1);
}

/* A bad input: exit code `want`, a message containing `needle`, no results.json. */
static void bad(const char *name, const char *args, int want, const char *needle) {
    char dir[512], full[4096], out[8192];
    snprintf(dir, sizeof dir, "%s/bad_%s", tmp, name);
    snprintf(full, sizeof full, "%s -o '%s'", args, dir);
    int rc = eval(full, out, sizeof out);
    CHECK(rc == want && strstr(out, needle) && !exists(dir, "results.json"),
          "%s: want exit %d and '%s', got exit %d:\n%s", name, want, needle, rc, out);
    char *nl = strchr(out, '\n');
    if (nl) *nl = '\0';
    printf("bad %-14s exit %d: %s\n", name, rc, out);
}

static void test_bad_inputs(void) {
    const char *tiny = "--n-queries 2 -n 4 --alphas 0,1";
    char args[2048], p[1024];
    snprintf(args, sizeof args, "%s --emotions joy,surprise", tiny);
    bad("emotion", args, 2, "'surprise' is not in");
    bad("emotion-list", args, 2, "it has: joy, sadness, anger, fear, disgust");
    bad("alphas-empty", "--alphas ''", 2, "--alphas: empty list");
    bad("alphas-gap", "--alphas 1,,2", 2, "empty entry in '1,,2'");
    bad("alphas-nan", "--alphas nan", 2, "'nan' is not a finite number");
    bad("alphas-twice", "--alphas 1,1", 2, "given twice");
    /* a query file that is not what it should be */
    snprintf(p, sizeof p, "%s/bad_queries.json", tmp);
    FILE *f = fopen(p, "w");
    fputs("{\"queries\": {\"neutral\": [\"fine\", 7]}}", f);
    fclose(f);
    snprintf(args, sizeof args, "%s --queries '%s'", tiny, p);
    bad("queries", args, 1, "bad_queries.json");
    snprintf(p, sizeof p, "%s/no_neutral.json", tmp);
    f = fopen(p, "w");
    fputs("{\"joy\": [\"What made you smile?\"]}", f);
    fclose(f);
    snprintf(args, sizeof args, "%s --queries '%s'", tiny, p);
    bad("no-neutral", args, 1, "has none for");
    snprintf(args, sizeof args, "%s --judge /nonexistent/judge.gguf", tiny);
    bad("judge", args, 1, "/nonexistent/judge.gguf");
    snprintf(args, sizeof args, "%s --judge '%s/bad_queries.json'", tiny, tmp);
    bad("judge-junk", args, 1, "judge");
    snprintf(args, sizeof args, "%s --lexicon /nonexistent", tiny);
    bad("lexicon", args, 1, "/nonexistent");
    /* vectors of a model 16 wide */
    es_ev_set *set = NULL;
    float v[16] = {1};
    snprintf(p, sizeof p, "%s/narrow.ev.gguf", tmp);
    if (CHECK(es_ev_set_create(16, ES_HOOK_BLOCK_OUT, &set) == ES_OK &&
                  es_ev_set_put(set, "joy", 1, v) == ES_OK && es_ev_set_save(set, p) == ES_OK,
              "narrow EV: %s", es_last_error())) {
        char full[4096], out[8192];
        snprintf(full, sizeof full, "'%s' eval -m '%s' --ev '%s' %s -o '%s/bad_width' 2>&1", bin,
                 model, p, tiny, tmp);
        int rc = es_test_run_cmd(full, out, sizeof out);
        snprintf(p, sizeof p, "%s/bad_width", tmp);
        CHECK(rc == 1 && strstr(out, "width 16") && strstr(out, "384") &&
                  !exists(p, "results.json"),
              "EV width mismatch: exit %d: %s", rc, out);
        printf("bad %-14s exit %d: %s", "ev-width", rc, out);
    }
    es_ev_set_free(set);
    char out[8192], full[4096];
    snprintf(full, sizeof full, "'%s' eval --ev '%s' 2>&1", bin, ev);
    CHECK(es_test_run_cmd(full, out, sizeof out) == 2 && strstr(out, "-o DIR"),
          "-o missing exits 2: %s", out);
    snprintf(full, sizeof full, "'%s' eval -o '%s/bad_noev' 2>&1", bin, tmp);
    CHECK(es_test_run_cmd(full, out, sizeof out) == 2 && strstr(out, "--ev"),
          "--ev missing exits 2: %s", out);
    bad("option", "--bogus 1", 2, "unknown option '--bogus'");
    /* an existing run: only --resume continues it, and only with the same settings */
    char d1[512];
    snprintf(d1, sizeof d1, "%s/run1", tmp);
    snprintf(full, sizeof full, "--emotions joy,anger --alphas 0,2 --n-queries 3 -n 12 -o '%s'",
             d1);
    int rc = eval(full, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--resume"), "rerun without --resume exits 2: %d %s", rc, out);
    snprintf(full, sizeof full,
             "--emotions joy,anger --alphas 0,2 --n-queries 3 -n 13 -o '%s' --resume", d1);
    rc = eval(full, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "n_predict=12") && strstr(out, "n_predict=13"),
          "resume with another -n exits 2 naming it: %d %s", rc, out);
}

int main(void) {
    if (!es_test_demo(&bin, model, sizeof model, ev, sizeof ev)) return ES_TEST_SKIP;
    if (!es_test_tmpdir("eval_cli", tmp, sizeof tmp)) return es_test_finish();
    test_runs();
    test_bad_inputs();
    es_test_tmpdir_done(tmp);
    return es_test_finish();
}
