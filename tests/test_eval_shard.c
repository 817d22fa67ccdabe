/*
 * test_eval_shard.c — `eval --shard K/N` and `eval --merge` ($ES_BIN, demo model): a grid
 * of 18 responses at --batch 4 (5 batches, shards of 1, 2 and 2 batches: uneven on
 * purpose) is made whole and as shards 1/3, 2/3, 3/3; --merge gives a folder whose
 * generations.jsonl, summary.csv and run-settings.txt are byte for byte the whole
 * run's, and whose results.json and report.html are too but for the "created" time.
 * Shards decode exactly the whole run's batches, so this holds with any --numerics.
 * Merging too few folders, a shard of another run, or an unfinished shard is refused
 * naming the problem and leaves no results; bad --shard values exit 2; the merged
 * folder resumes as a whole run's does.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin;
static char model[1024], ev[1024], tmp[256];

/* The grid of every run here, then args. */
static int eval(const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' eval -m '%s' --ev '%s' -t 2 --emotions joy,anger,fear --alphas 0,2 "
             "--n-queries 3 -n 16 "
             "--batch 4 %s 2>&1",
             tmp, bin, model, ev, args);
    return es_test_run_cmd(cmd, out, cap);
}

static char *read_in(const char *dir, const char *name, bool drop_created) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s", tmp, dir, name);
    char *t = es_test_read_file(p, NULL);
    if (t && drop_created) { /* blank the line (JSON) or cell (HTML) holding the time */
        for (char *c = strstr(t, "created"); c; c = strstr(c + 1, "created"))
            for (char *e = c; *e && *e != '\n'; e++)
                *e = ' ';
    }
    return t;
}

static void same_file(const char *name, bool drop_created) {
    char *a = read_in("whole", name, drop_created), *b = read_in("merged", name, drop_created);
    size_t at = 0;
    if (a && b)
        while (a[at] && a[at] == b[at])
            at++;
    CHECK(a && b && !strcmp(a, b),
          "%s: merged differs from the whole run's at byte %zu: '%.60s' vs '%.60s'", name, at,
          a ? a + at : "(none)", b ? b + at : "(none)");
    free(a);
    free(b);
}

int main(void) {
    if (!es_test_demo(&bin, model, sizeof model, ev, sizeof ev)) return ES_TEST_SKIP;
    if (!es_test_tmpdir("eval_shard", tmp, sizeof tmp)) return es_test_finish();
    char out[16384], args[1024];

    CHECK(eval("-o whole", out, sizeof out) == 0, "whole run: %s", out);
    const char *ranges[3] = {"responses 0..3 of the grid (4)", "responses 4..11 of the grid (8)",
                             "responses 12..17 of the grid (6)"};
    for (int k = 1; k <= 3; k++) {
        snprintf(args, sizeof args, "--shard %d/3 -o s%d", k, k);
        CHECK(eval(args, out, sizeof out) == 0 && strstr(out, ranges[k - 1]), "shard %d/3: %s", k,
              out);
    }
    char *r = read_in("s1", "results.json", false);
    CHECK(!r, "a shard writes no results.json");
    free(r);

    /* refusals leave no results */
    CHECK(eval("--merge s1 s2 -o m1", out, sizeof out) == 1 &&
              strstr(out, "the run has 3 shards; 2 folders given"),
          "too few shards: %s", out);
    CHECK(eval("--merge s1 s1 s3 -o m1", out, sizeof out) == 1 && strstr(out, "are both shard 1/3"),
          "twice: %s", out);
    CHECK(eval("--merge s1 s2 s3 -o m1 -n 12", out, sizeof out) == 1 &&
              strstr(out, "is not a shard of this run") && strstr(out, "n_predict=16"),
          "another run: %s", out);
    CHECK(eval("--merge s1 s2 s3 -o m1 --batch 2", out, sizeof out) == 1 && strstr(out, "batch 4"),
          "another batch: %s", out);
    char cmd[2048];
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && cp -r s2 s2cut && head -n 3 s2/generations.jsonl > s2cut/generations.jsonl",
        tmp);
    CHECK(system(cmd) == 0, "%s", cmd);
    CHECK(eval("--merge s1 s2cut s3 -o m1", out, sizeof out) == 1 &&
              strstr(out, "lack 5 of the 18") && strstr(out, "of shard 2/3") &&
              strstr(out, "--shard 2/3 --resume"),
          "unfinished shard: %s", out);
    r = read_in("m1", "generations.jsonl", false);
    char *r2 = read_in("m1", "results.json", false);
    CHECK(!r && !r2, "a refused merge leaves nothing");
    free(r);
    free(r2);
    CHECK(eval("--shard 4/3 -o x", out, sizeof out) == 2 && strstr(out, "K/N"), "--shard 4/3: %s",
          out);
    CHECK(eval("--shard 0/3 -o x", out, sizeof out) == 2, "--shard 0/3: %s", out);
    CHECK(eval("--shard 1 -o x", out, sizeof out) == 2, "--shard 1: %s", out);
    CHECK(eval("--shard 1/2 --merge s1 -o x", out, sizeof out) == 2 && strstr(out, "exclude"),
          "both: %s", out);

    /* the merge: the whole run's files */
    CHECK(eval("--merge s1 s2 s3 -o merged", out, sizeof out) == 0 &&
              strstr(out, "merged 3 shards") && strstr(out, "0 to generate"),
          "merge: %s", out);
    same_file("generations.jsonl", false);
    same_file("summary.csv", false);
    same_file("run-settings.txt", false);
    same_file("results.json", true);
    same_file("report.html", true);
    CHECK(eval("--resume -o merged", out, sizeof out) == 0 && strstr(out, "18 done, 0 to generate"),
          "the merged folder resumes: %s", out);

    es_test_tmpdir_done(tmp);
    return es_test_finish();
}
