/*
 * test_score_cli.c — `emosteer score` ($ES_BIN): a tiny eval on the demo model, then
 * `score --texts DIR/generations.jsonl` gives every record exactly the lexicon scores
 * eval wrote (parsed from both files, compared with ==), with the record's other
 * fields kept; the summary groups by emotion and alpha (found in the lines) with the
 * target prob of each cell equal to results.json's; --group-by picks the keys ('' =
 * one group); a .txt file scores one text a line; "output" and "text" keys are read;
 * bad inputs exit 1 or 2 naming the problem.
 */
#include "testutil.h"

#include "emosteer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin;
static char model[1024], ev[1024], tmp[256];

/* `emosteer score ARGS` with stderr merged into out. */
static int score(const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' score %s 2>&1", bin, args);
    return es_test_run_cmd(cmd, out, cap);
}

static es_genlog *open_log(const char *path) {
    es_genlog *log = NULL;
    if (es_genlog_open(path, es_eval_lexicon_labels, ES_EMO_N_LABELS, false, &log) != ES_OK) {
        CHECK(false, "%s: %s", path, es_last_error());
        return NULL;
    }
    return log;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_eval_scores(void) {
    char dir[512], cmd[4096], out[65536], p[1024], q[1024];
    snprintf(dir, sizeof dir, "%s/eval", tmp);
    snprintf(cmd, sizeof cmd,
             "'%s' eval -m '%s' --ev '%s' -t 2 -o '%s' --n-queries 3 -n 32 --alphas 0,2,4 --batch "
             "8 2>&1",
             bin, model, ev, dir);
    if (!CHECK(es_test_run_cmd(cmd, out, sizeof out) == 0, "eval: %s", out)) return;
    snprintf(p, sizeof p, "%s/scored.jsonl", tmp);
    snprintf(q, sizeof q, "%s/summary.csv", tmp);
    snprintf(cmd, sizeof cmd, "--texts '%s/generations.jsonl' -o '%s' --summary '%s'", dir, p, q);
    CHECK(score(cmd, out, sizeof out) == 0, "score: %s", out);
    CHECK(strstr(out, "45 texts") && strstr(out, "field \"response\""),
          "score names the count and field: %s", out);

    /* every record: the same key, response and exactly the same six scores */
    snprintf(cmd, sizeof cmd, "%s/generations.jsonl", dir);
    es_genlog *a = open_log(cmd), *b = open_log(p);
    if (a && b) {
        es_genlog_info ia, ib;
        es_genlog_get_info(a, &ia);
        es_genlog_get_info(b, &ib);
        CHECK(ia.n_records == 45 && ib.n_records == ia.n_records, "records: %zu eval, %zu scored",
              ia.n_records, ib.n_records);
        const es_gen_record *ra = es_genlog_records(a), *rb = es_genlog_records(b);
        int differ = 0, scored = 0;
        for (size_t i = 0; i < ia.n_records && i < ib.n_records; i++) {
            bool same = !strcmp(ra[i].emotion, rb[i].emotion) && ra[i].alpha == rb[i].alpha &&
                        !strcmp(ra[i].query_id, rb[i].query_id) &&
                        !strcmp(ra[i].response, rb[i].response) && ra[i].seed == rb[i].seed &&
                        ra[i].ppl == rb[i].ppl;
            for (int k = 0; same && k < ES_EMO_N_LABELS; k++)
                same = ra[i].scores[k] == rb[i].scores[k];
            scored += ra[i].scores[ES_EMO_NEUTRAL] < 1;
            if (!same && differ++ < 3)
                printf("record %zu differs: %s %g %s\n  eval  %.10g %.10g\n  score %.10g %.10g\n",
                       i, ra[i].emotion, ra[i].alpha, ra[i].query_id, ra[i].scores[0],
                       ra[i].scores[ES_EMO_NEUTRAL], rb[i].scores[0], rb[i].scores[ES_EMO_NEUTRAL]);
        }
        CHECK(differ == 0, "%d of %zu records' scores differ from eval's", differ, ia.n_records);
        CHECK(scored > 3, "some responses hold emotion words (%d): the comparison means something",
              scored);
    }
    es_genlog_free(a);
    es_genlog_free(b);

    /* the summary: grouped by emotion and alpha, its target prob is results.json's */
    char *csv = es_test_read_file(q, NULL);
    const char *head = "emotion,alpha,n,anger,disgust,fear,joy,sadness,neutral,eas,target_prob\n";
    CHECK(csv && !strncmp(csv, head, strlen(head)), "summary.csv header: %.120s",
          csv ? csv : "(none)");
    snprintf(p, sizeof p, "%s/results.json", dir);
    es_eval_results *r = NULL;
    if (CHECK(es_results_read_json(p, &r) == ES_OK, "%s", es_last_error()) && csv) {
        int rows = 0, off = 0;
        for (char *line = strchr(csv, '\n') + 1; *line; line = strchr(line, '\n') + 1, rows++) {
            char emo[32];
            double alpha, target;
            int n;
            if (sscanf(line, "%31[^,],%lf,%d,%*[^,],%*[^,],%*[^,],%*[^,],%*[^,],%*[^,],%*[^,],%lf",
                       emo, &alpha, &n, &target) != 4)
                break;
            for (int e = 0; e < r->n_emotions; e++)
                for (int x = 0; x < r->n_alphas; x++)
                    if (!strcmp(r->emotions[e], emo) && r->alphas[x] == alpha) {
                        const es_eval_cell *c = es_eval_cell_at(r, e, x);
                        if (c->n != n || fabs(c->target_prob.mean - target) > 1e-5) {
                            off++;
                            printf("%s %g: score n %d target %g; eval n %d target %g\n", emo, alpha,
                                   n, target, c->n, c->target_prob.mean);
                        }
                    }
        }
        CHECK(rows == 15 && off == 0, "summary rows %d (want 15), %d differ from results.json",
              rows, off);
    }
    es_eval_results_free(r);
    free(csv);

    /* --group-by: chosen keys; '' = one group */
    snprintf(cmd, sizeof cmd, "--texts '%s/generations.jsonl' -o /dev/null --group-by alpha", dir);
    CHECK(score(cmd, out, sizeof out) == 0 && strstr(out, "alpha ") && !strstr(out, "emotion "),
          "--group-by alpha: %s", out);
    snprintf(cmd, sizeof cmd,
             "--texts '%s/generations.jsonl' -o /dev/null --group-by '' --summary '%s/s.json'", dir,
             tmp);
    CHECK(score(cmd, out, sizeof out) == 0, "--group-by '': %s", out);
    snprintf(p, sizeof p, "%s/s.json", tmp);
    char *js = es_test_read_file(p, NULL);
    CHECK(js && strstr(js, "\"group_by\": []") && strstr(js, "\"n\": 45") &&
              strstr(js, "emosteer-score-summary/1"),
          "one group of 45 in JSON: %.300s", js ? js : "(none)");
    free(js);
}

static void test_other_inputs(void) {
    char p[1024], args[2048], out[16384];
    /* one text a line */
    snprintf(p, sizeof p, "%s/t.txt", tmp);
    write_file(p, "I am so happy today\n\nThis is awful and disgusting\n");
    snprintf(args, sizeof args, "--texts '%s' 2>/dev/null", p);
    CHECK(score(args, out, sizeof out) == 0 &&
              strstr(out, "{\"line\":1,\"text\":\"I am so happy "
                          "today\",\"scores\":{\"anger\":0.0,\"disgust\":0.0,"
                          "\"fear\":0.0,\"joy\":0.5,") &&
              strstr(out, "{\"line\":3,\"text\":\"This is awful"),
          ".txt: %s", out);
    /* "output" and "text" keys; other fields group (model), per-line ones do not (id) */
    snprintf(p, sizeof p, "%s/o.jsonl", tmp);
    write_file(p, "{\"id\":1,\"model\":\"a\",\"output\":\"I am "
                  "happy\"}\n{\"id\":2,\"model\":\"b\",\"output\":\"I am sad\"}\n");
    snprintf(args, sizeof args, "--texts '%s' -o /dev/null", p);
    CHECK(score(args, out, sizeof out) == 0 && strstr(out, "model") && !strstr(out, "id "),
          "\"output\": %s", out);
    /* errors: a line without the text key names path:line; bad --summary name; no --texts */
    write_file(p, "{\"text\":\"fine\"}\n{\"response\":\"no text key\"}\n");
    snprintf(args, sizeof args, "--texts '%s'", p);
    CHECK(score(args, out, sizeof out) == 1 && strstr(out, "o.jsonl:2") && strstr(out, "\"text\""),
          "missing key: %s", out);
    write_file(p, "{\"text\":\"fine\"}\nnot json\n");
    CHECK(score(args, out, sizeof out) == 1 && strstr(out, "o.jsonl:2: invalid JSON"),
          "bad line: %s", out);
    snprintf(args, sizeof args, "--texts '%s' --summary x.txt", p);
    CHECK(score(args, out, sizeof out) == 2 && strstr(out, ".csv or .json"), "--summary x.txt: %s",
          out);
    CHECK(score("", out, sizeof out) == 2 && strstr(out, "--texts"), "no --texts: %s", out);
    CHECK(score("--texts /nonexistent.jsonl", out, sizeof out) == 1 &&
              strstr(out, "/nonexistent.jsonl"),
          "missing file: %s", out);
}

int main(void) {
    if (!es_test_demo(&bin, model, sizeof model, ev, sizeof ev)) return ES_TEST_SKIP;
    if (!es_test_tmpdir("score_cli", tmp, sizeof tmp)) return es_test_finish();
    test_eval_scores();
    test_other_inputs();
    es_test_tmpdir_done(tmp);
    return es_test_finish();
}
