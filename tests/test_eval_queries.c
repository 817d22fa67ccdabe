/*
 * test_eval_queries.c — `emosteer eval --queries` with the paper's benchmarks on the demo
 * model ($ES_BIN; ../shared/data/emotionquery): EmotionQuery.json (emotion -> queries)
 * asks each emotion its own first N queries ("joy-0001" for joy, "anger-0001" for
 * anger, prompts the file's texts); EmotionQuery+.json (a list) asks every emotion all
 * of its first N ("query-0001"); the project's set asks the neutral list. Each run
 * records its protocol in run-settings.txt, results.json and report.html. An
 * EmotionQuery file without a list for a steered emotion is refused naming it; a run
 * written before the protocol was recorded still resumes.
 */
#include "testutil.h"

#include "emosteer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin;
static char model[1024], ev[1024], tmp[256];

static int eval(const char *dir, const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' eval -m '%s' --ev '%s' -t 2 -o '%s/%s' --n-queries 2 -n 6 --alphas 0,1 %s 2>&1",
             bin, model, ev, tmp, dir, args);
    return es_test_run_cmd(cmd, out, cap);
}

static char *read_in(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s", tmp, dir, name);
    return es_test_read_file(p, NULL);
}

/* Checks the records of dir: n of them, emotion e asked ids <prefix(e)>-0000, -0001
 * with the texts of list(e) of the query set. */
static void check_run(const char *dir, const es_query_set *qs, const char *protocol, bool own_lists,
                      int n_want) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/generations.jsonl", tmp, dir);
    es_genlog *log = NULL;
    if (!CHECK(es_genlog_open(p, es_eval_lexicon_labels, ES_EMO_N_LABELS, false, &log) == ES_OK,
               "%s: %s", p, es_last_error()))
        return;
    es_genlog_info info;
    es_genlog_get_info(log, &info);
    CHECK((int)info.n_records == n_want, "%s: %zu records, want %d", dir, info.n_records, n_want);
    const es_gen_record *r = es_genlog_records(log);
    int wrong = 0;
    for (size_t i = 0; i < info.n_records; i++) {
        const es_query_list *l = own_lists ? es_query_set_find(qs, r[i].emotion) : &qs->lists[0];
        int k = -1;
        for (int q = 0; l && q < 2; q++)
            if (!strcmp(l->queries[q].id, r[i].query_id)) k = q;
        if (k < 0 || strcmp(l->queries[k].text, r[i].prompt) != 0) {
            if (wrong++ < 3)
                printf("%s: %s asked %s: %.60s\n", dir, r[i].emotion, r[i].query_id, r[i].prompt);
        }
    }
    CHECK(wrong == 0, "%s: %d records asked a query not of their list", dir, wrong);
    es_genlog_free(log);
    char *set = read_in(dir, "run-settings.txt"), *res = read_in(dir, "results.json"),
         *rep = read_in(dir, "report.html");
    char want[128];
    snprintf(want, sizeof want, "\nprotocol=%s\n", protocol);
    CHECK(set && strstr(set, want), "%s: run-settings.txt has %s", dir, want + 1);
    snprintf(want, sizeof want, "\"protocol\": \"%s: ", protocol);
    CHECK(res && strstr(res, want), "%s: results.json has %s", dir, want);
    snprintf(want, sizeof want, "protocol</th><td>%s: ", protocol);
    CHECK(rep && strstr(rep, want), "%s: report.html shows %s", dir, want);
    free(set);
    free(res);
    free(rep);
}

int main(void) {
    char eq[1024]; /* es_test_shared_path's buffer is static: copy */
    const char *shared_eq = es_test_shared_path("data/emotionquery/EmotionQuery.json");
    snprintf(eq, sizeof eq, "%s", shared_eq ? shared_eq : "");
    if (!es_test_demo(&bin, model, sizeof model, ev, sizeof ev)) return ES_TEST_SKIP;
    if (!shared_eq || access(eq, R_OK) != 0) {
        printf("needs ../shared/data/emotionquery: skipped\n");
        return ES_TEST_SKIP;
    }
    char eqp[1024], args[2048], out[16384], p[1024];
    snprintf(eqp, sizeof eqp, "%s", es_test_shared_path("data/emotionquery/EmotionQuery+.json"));
    if (!es_test_tmpdir("eval_queries", tmp, sizeof tmp)) return es_test_finish();

    es_query_set *qs = NULL, *qsp = NULL, *own = NULL;
    snprintf(p, sizeof p, "%s/data/queries/emosteer-queries.json", es_test_source());
    if (!CHECK(es_query_set_load(eq, &qs) == ES_OK && es_query_set_load(eqp, &qsp) == ES_OK &&
                   es_query_set_load(p, &own) == ES_OK,
               "query sets: %s", es_last_error()))
        return es_test_finish();

    /* EmotionQuery: each emotion its own queries */
    snprintf(args, sizeof args, "--emotions joy,anger --queries '%s'", eq);
    CHECK(eval("eq", args, out, sizeof out) == 0 && strstr(out, "2 queries of its own") &&
              strstr(out, "protocol emotionquery)"),
          "EmotionQuery: %s", out);
    check_run("eq", qs, "emotionquery", true, 8);
    /* EmotionQuery+: every emotion on the shared list */
    snprintf(args, sizeof args, "--emotions joy,anger --queries '%s'", eqp);
    CHECK(eval("eqp", args, out, sizeof out) == 0 && strstr(out, "protocol emotionquery+)"),
          "EmotionQuery+: %s", out);
    check_run("eqp", qsp, "emotionquery+", false, 8);
    /* the project's set: the neutral list */
    CHECK(eval("own", "--emotions joy,anger", out, sizeof out) == 0 &&
              strstr(out, "protocol neutral)"),
          "own: %s", out);
    const es_query_list *neutral = es_query_set_find(own, "neutral");
    es_query_set one = {.n_lists = 1, .lists = (es_query_list *)neutral};
    if (neutral) check_run("own", &one, "neutral", false, 8);

    /* a run recorded before the protocol line resumes */
    char *set = read_in("own", "run-settings.txt");
    char *line = set ? strstr(set, "protocol=neutral\n") : NULL;
    if (CHECK(line != NULL, "own: protocol line")) {
        *line = '\0';
        snprintf(p, sizeof p, "%s/own/run-settings.txt", tmp);
        FILE *f = fopen(p, "w");
        fputs(set, f);
        fclose(f);
        CHECK(eval("own", "--emotions joy,anger --resume", out, sizeof out) == 0 &&
                  strstr(out, "0 to generate"),
              "resume of an old run: %s", out);
    }
    free(set);

    /* EmotionQuery shape without a list for a steered emotion */
    snprintf(p, sizeof p, "%s/joy_only.json", tmp);
    FILE *f = fopen(p, "w");
    fputs("{\"joy\": [\"What made you smile?\"]}", f);
    fclose(f);
    snprintf(args, sizeof args, "--emotions joy,anger --queries '%s'", p);
    CHECK(eval("bad", args, out, sizeof out) == 1 && strstr(out, "has none for 'anger'") &&
              strstr(out, "it has: joy"),
          "missing list: %s", out);

    es_query_set_free(qs);
    es_query_set_free(qsp);
    es_query_set_free(own);
    es_test_tmpdir_done(tmp);
    return es_test_finish();
}
