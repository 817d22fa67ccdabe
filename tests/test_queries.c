/* test_queries.c — the query-set loader on both shapes: the project's
 * data/queries/emosteer-queries.json (>= 200 queries per emotion and neutral, with
 * instructions, no duplicates, nothing shared with EmotionQuery or the held-out
 * prompts), the seed paper's EmotionQuery.json when ../shared is present, the
 * held-out prompt file, and malformed inputs (messages name the file and entry). */
#include "queries.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static const char *emotions[] = {"anger", "disgust", "fear", "joy", "sadness"};

static const char *path_in_source(const char *rel) {
    static char buf[2][1024];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", es_test_source(), rel);
    return buf[k];
}

static bool contains(const es_query_set *qs, const char *text) {
    for (int i = 0; i < qs->n_lists; i++)
        for (int k = 0; k < qs->lists[i].n; k++)
            if (!strcmp(qs->lists[i].queries[k].text, text)) return true;
    return false;
}

static es_query_set *test_own_set(void) {
    es_query_set *qs = NULL;
    es_status st = es_query_set_load(path_in_source("data/queries/emosteer-queries.json"), &qs);
    CHECK(st == ES_OK, "load emosteer-queries.json: %s", es_last_error());
    if (!qs) return NULL;
    CHECK(qs->format == ES_QUERY_FORMAT_EMOSTEER && qs->description,
          "emosteer format with description");
    CHECK(qs->n_lists == 6, "6 lists: %d", qs->n_lists);
    int total = 0;
    for (int e = 0; e < 6; e++) {
        const char *name = e < 5 ? emotions[e] : "neutral";
        const es_query_list *l = es_query_set_find(qs, name);
        if (!CHECK(l != NULL, "list %s present", name)) continue;
        CHECK(l->n >= 200, "%s: %d queries (>= 200)", name, l->n);
        CHECK(l->n_duplicates == 0, "%s: %d duplicates", name, l->n_duplicates);
        CHECK(l->system && strlen(l->system) > 20 && l->prefix && strlen(l->prefix) > 10,
              "%s: system prompt and prefix", name);
        if (e < 5)
            CHECK(l->system && strstr(l->system, name), "%s: system prompt names the emotion",
                  name);
        char id[32];
        snprintf(id, sizeof id, "%s-0007", name);
        CHECK(l->n > 7 && !strcmp(l->queries[7].id, id), "%s: id %s", name,
              l->n > 7 ? l->queries[7].id : "?");
        /* every query is a sentence ending in ? or . and starting with a capital */
        int bad = 0;
        for (int k = 0; k < l->n; k++) {
            const char *t = l->queries[k].text;
            size_t n = strlen(t);
            bad += !(t[0] >= 'A' && t[0] <= 'Z') || !(t[n - 1] == '?' || t[n - 1] == '.') ||
                   n < 15 || n > 300;
        }
        CHECK(bad == 0, "%s: %d queries not shaped like a sentence", name, bad);
        total += l->n;
    }
    printf("emosteer-queries.json: %d queries in %d lists\n", total, qs->n_lists);
    /* no query in two lists */
    int shared = 0;
    for (int a = 0; a < qs->n_lists; a++)
        for (int k = 0; k < qs->lists[a].n; k++)
            for (int b = a + 1; b < qs->n_lists; b++)
                for (int j = 0; j < qs->lists[b].n; j++)
                    shared += !strcmp(qs->lists[a].queries[k].text, qs->lists[b].queries[j].text);
    CHECK(shared == 0, "%d queries in two lists", shared);
    return qs;
}

static void test_emotionquery(const es_query_set *own) {
    const char *path = es_test_shared_path("data/emotionquery/EmotionQuery.json");
    if (!path) {
        printf("SKIP: EmotionQuery.json (no shared folder)\n");
        return;
    }
    es_query_set *qs = NULL;
    CHECK(es_query_set_load(path, &qs) == ES_OK, "load EmotionQuery.json: %s", es_last_error());
    if (!qs) return;
    CHECK(qs->format == ES_QUERY_FORMAT_EMOTIONQUERY && qs->n_lists == 5, "EmotionQuery: %d lists",
          qs->n_lists);
    for (int e = 0; e < 5; e++) {
        const es_query_list *l = es_query_set_find(qs, emotions[e]);
        CHECK(l && l->n == 100 && !l->system && !l->prefix, "EmotionQuery %s: 100 queries",
              emotions[e]);
    }
    const es_query_list *joy = es_query_set_find(qs, "joy");
    CHECK(joy && joy->n_duplicates == 31, "EmotionQuery joy repeats 31 queries: %d",
          joy ? joy->n_duplicates : -1);
    CHECK(!es_query_set_find(qs, "neutral"), "no neutral list");
    if (own) {
        int overlap = 0;
        for (int i = 0; i < qs->n_lists; i++)
            for (int k = 0; k < qs->lists[i].n; k++)
                overlap += contains(own, qs->lists[i].queries[k].text);
        CHECK(overlap == 0, "%d EmotionQuery queries also in ours", overlap);
    }
    es_query_set_free(qs);
    /* EmotionQuery+: 400 unlabelled queries, one list */
    path = es_test_shared_path("data/emotionquery/EmotionQuery+.json");
    qs = NULL;
    CHECK(es_query_set_load(path, &qs) == ES_OK, "load EmotionQuery+.json: %s", es_last_error());
    if (!qs) return;
    CHECK(qs->format == ES_QUERY_FORMAT_LIST && qs->n_lists == 1 &&
              !strcmp(qs->lists[0].emotion, ES_QUERY_LIST_NAME) && qs->lists[0].n == 400 &&
              !strcmp(qs->lists[0].queries[42].id, "query-0042"),
          "EmotionQuery+: %d lists, the first %s with %d queries", qs->n_lists,
          qs->n_lists ? qs->lists[0].emotion : "-", qs->n_lists ? qs->lists[0].n : 0);
    es_query_set_free(qs);
}

static void test_prompts(const es_query_set *own) {
    char **p = NULL;
    int n = 0;
    CHECK(es_prompts_load(path_in_source("data/queries/heldout-prompts.txt"), &p, &n) == ES_OK,
          "held-out prompts: %s", es_last_error());
    CHECK(n >= 45 && n <= 60, "about 50 held-out prompts: %d", n);
    int in_set = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        if (own) in_set += contains(own, p[i]);
        size_t len = strlen(p[i]);
        bad += len < 10 || len > 80 || p[i][len - 1] == ' ';
    }
    CHECK(in_set == 0 && bad == 0, "held-out prompts: %d in the query set, %d badly shaped", in_set,
          bad);
    es_prompts_free(p, n);

    char tmp[] = "/tmp/es_test_prompts_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "w");
        fputs("# comment\n\nOnce upon a time \r\n   \nThe end", f);
        fclose(f);
        CHECK(es_prompts_load(tmp, &p, &n) == ES_OK && n == 2 &&
                  !strcmp(p[0], "Once upon a time ") && !strcmp(p[1], "The end"),
              "prompt file rules (comments, blanks, CRLF, trailing space kept)");
        es_prompts_free(p, n);
        f = fopen(tmp, "w");
        fputs("# only a comment\n", f);
        fclose(f);
        CHECK(es_prompts_load(tmp, &p, &n) == ES_ERR_FORMAT &&
                  strstr(es_last_error(), "no prompts"),
              "empty prompt file");
        remove(tmp);
    }
}

static void test_malformed(void) {
    struct {
        const char *json, *want;
        es_status st;
    } bad[] = {
        {"{\"joy\": [\"a\", 3]}", "t.json: joy[1]: expected a non-empty string", ES_ERR_FORMAT},
        {"{\"joy\": [\"a\", \"\"]}",
         "joy[1]: expected a non-empty string without NUL, got an empty string", ES_ERR_FORMAT},
        {"{\"joy\": \"a\"}", "joy: expected an array of strings, got a string", ES_ERR_FORMAT},
        {"{\"joy\": []}", "joy: empty list", ES_ERR_FORMAT},
        {"{}", "no query lists", ES_ERR_FORMAT},
        {"[\"a\", 3]", "t.json: query[1]: expected a non-empty string", ES_ERR_FORMAT},
        {"[]", "query: empty list", ES_ERR_FORMAT},
        {"{\"jo y\": [\"a\"]}", "\"jo y\": names must be", ES_ERR_FORMAT},
        {"{\"joy\": [\"a\"], \"joy\": [\"b\"]}", "invalid JSON at line 1", ES_ERR_FORMAT},
        {"{\"joy\": [\"a\"", "invalid JSON", ES_ERR_FORMAT},
        {"{\"queries\": [\"a\"]}", "queries: expected an object", ES_ERR_FORMAT},
        {"{\"queries\": {\"joy\": [\"a\", null]}}", "queries.joy[1]: expected a non-empty string",
         ES_ERR_FORMAT},
        {"{\"queries\": {\"joy\": [\"a\"]}, \"instructions\": {\"joy\": {\"system\": 5}}}",
         "instructions.joy.system: expected a non-empty string, got a number", ES_ERR_FORMAT},
        {"{\"queries\": {\"joy\": [\"a\"]}, \"instructions\": {\"joy\": {\"sytem\": \"x\"}}}",
         "instructions.joy.sytem: unknown key", ES_ERR_FORMAT},
        {"{\"queries\": {\"joy\": [\"a\"]}, \"instructions\": {\"joy\": \"x\"}}",
         "instructions.joy: expected an object", ES_ERR_FORMAT},
        {"{\"format\": \"emosteer-queries/9\", \"queries\": {\"joy\": [\"a\"]}}",
         "is not emosteer-queries/1", ES_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_query_set *qs = NULL;
        es_status st = es_query_set_parse(bad[i].json, strlen(bad[i].json), "t.json", &qs);
        CHECK(st == bad[i].st && !qs && strstr(es_last_error(), "t.json") &&
                  strstr(es_last_error(), bad[i].want),
              "malformed %zu: status %d, message: %s", i, st, es_last_error());
        es_query_set_free(qs);
    }
    /* an instruction-only entry makes an empty list */
    const char *ok = "{\"queries\": {\"joy\": [\"a\", \"a\"]}, \"instructions\": {\"neutral\": "
                     "{\"prefix\": \"Plainly:\"}}}";
    es_query_set *qs = NULL;
    CHECK(es_query_set_parse(ok, strlen(ok), "t.json", &qs) == ES_OK, "instruction-only: %s",
          es_last_error());
    if (qs) {
        const es_query_list *n = es_query_set_find(qs, "neutral"),
                            *j = es_query_set_find(qs, "joy");
        CHECK(n && n->n == 0 && n->prefix && !strcmp(n->prefix, "Plainly:") && !n->system,
              "neutral instruction only");
        CHECK(j && j->n == 2 && j->n_duplicates == 1 && !strcmp(j->queries[1].id, "joy-0001"),
              "duplicates counted");
        es_query_set_free(qs);
    }
    CHECK(es_query_set_load("/nonexistent/q.json", &qs) == ES_ERR_IO &&
              strstr(es_last_error(), "/nonexistent/q.json"),
          "missing file named: %s", es_last_error());
}

int main(void) {
    es_query_set *own = test_own_set();
    test_emotionquery(own);
    test_prompts(own);
    test_malformed();
    es_query_set_free(own);
    return es_test_finish();
}
