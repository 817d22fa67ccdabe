/*
 * test_cli_encoder.c — the CLI binary ($ES_BIN) on the encoder classifiers of
 * ../shared/fixtures (bert_cls, roberta_cls): `emosteer activations -p TEXT [--pair B]`
 * and `--tokens ... --token-types ...` write the reference keys (tokens, token_types,
 * emb_out, attn_ln.i, hidden.i, pooled, class_logits, class_probs) within 1e-4;
 * `emosteer info` names the labels and says whether the pooler is present.
 */
#include "testutil.h"

#include "emosteer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Compares every reference key the CLI writes; returns the worst float difference. */
static double compare(const char *fx, es_gguf *ref, es_gguf *got, bool bert) {
    static const char *const fixed[] = {"tokens", "token_types",  "emb_out",
                                        "pooled", "class_logits", "class_probs"};
    double worst = 0;
    char name[32];
    for (int k = 0; k < 6 + 2 * 8; k++) {
        if (k < 6)
            snprintf(name, sizeof name, "%s", fixed[k]);
        else
            snprintf(name, sizeof name, "%s.%d", (k - 6) % 2 ? "hidden" : "attn_ln", (k - 6) / 2);
        const es_gguf_tensor *r = es_gguf_find_tensor(ref, name);
        if (!r) continue; /* fewer layers; roberta_cls has no token_types */
        const es_gguf_tensor *g = es_gguf_find_tensor(got, name);
        if (!CHECK(g && g->type == r->type && !memcmp(g->ne, r->ne, sizeof g->ne),
                   "%s: %s missing or reshaped", fx, name))
            continue;
        if (r->type == ES_TYPE_I32) {
            CHECK(!memcmp(g->data, r->data, r->nbytes), "%s: %s differs", fx, name);
            continue;
        }
        size_t where = 0;
        double d = es_test_maxdiff(g->data, r->data, r->nbytes / 4, &where);
        CHECK(d <= 1e-4, "%s: %s max diff %g at %zu", fx, name, d, where);
        worst = d > worst ? d : worst;
    }
    (void)bert;
    return worst;
}

static void test_fixture(const char *bin, const char *fx, bool bert) {
    char model[1024], refp[1024], out[256], cmd[8192], msg[8192];
    snprintf(model, sizeof model, "%s/%s.f16.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(refp, sizeof refp, "%s/%s.ref.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(out, sizeof out, "/tmp/es_test_cli_enc_%d_%s.gguf", (int)getpid(), fx);
    es_gguf *ref = NULL, *got = NULL;
    if (!CHECK(es_gguf_open(refp, &ref) == ES_OK, "%s", es_last_error())) return;
    char *ta = es_gguf_get_str_dup(ref, bert ? "reference.text_a" : "reference.text");
    char *tb = bert ? es_gguf_get_str_dup(ref, "reference.text_b") : NULL;
    /* from the text */
    snprintf(cmd, sizeof cmd, "'%s' activations -m '%s' -o '%s' -t 2 -p \"%s\"%s%s%s 2>&1", bin,
             model, out, ta, tb ? " --pair \"" : "", tb ? tb : "", tb ? "\"" : "");
    int rc = es_test_run_cmd(cmd, msg, sizeof msg);
    if (CHECK(rc == 0, "%s -p: exit %d: %s", fx, rc, msg) &&
        CHECK(es_gguf_open(out, &got) == ES_OK, "%s output: %s", fx, es_last_error())) {
        printf("%-11s activations -p%s: max diff %.2e\n", fx, bert ? " --pair" : "",
               compare(fx, ref, got, bert));
        es_gguf_close(got);
        got = NULL;
    }
    remove(out);
    /* from the ids */
    const es_gguf_tensor *tt = es_gguf_find_tensor(ref, "tokens"),
                         *ty = es_gguf_find_tensor(ref, "token_types");
    int len =
        snprintf(cmd, sizeof cmd, "'%s' activations -m '%s' -o '%s' --tokens ", bin, model, out);
    for (int i = 0; i < tt->ne[0]; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s%d", i ? "," : "",
                        ((const int32_t *)tt->data)[i]);
    if (ty) {
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " --token-types ");
        for (int i = 0; i < ty->ne[0]; i++)
            len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s%d", i ? "," : "",
                            ((const int32_t *)ty->data)[i]);
    }
    snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>&1");
    rc = es_test_run_cmd(cmd, msg, sizeof msg);
    if (CHECK(rc == 0, "%s --tokens: exit %d: %s", fx, rc, msg) &&
        CHECK(es_gguf_open(out, &got) == ES_OK, "%s output: %s", fx, es_last_error())) {
        printf("%-11s activations --tokens: max diff %.2e\n", fx, compare(fx, ref, got, bert));
        es_gguf_close(got);
    }
    remove(out);
    /* info */
    snprintf(cmd, sizeof cmd, "'%s' info '%s' 2>&1", bin, model);
    rc = es_test_run_cmd(cmd, msg, sizeof msg);
    CHECK(rc == 0 && strstr(msg, "architecture:   bert") &&
              strstr(msg, bert ? "contradiction neutral entailment"
                               : "anger disgust fear joy neutral") &&
              strstr(msg, "pooler:         yes"),
          "%s info: exit %d:\n%s", fx, rc, msg);
    /* usage errors */
    snprintf(cmd, sizeof cmd, "'%s' activations -m '%s' -o '%s' --tokens 1,2 --token-types 0 2>&1",
             bin, model, out);
    CHECK(es_test_run_cmd(cmd, msg, sizeof msg) == 2,
          "%s: --token-types of the wrong length exits 2", fx);
    free(ta);
    free(tb);
    es_gguf_close(ref);
}

int main(void) {
    const char *bin = getenv("ES_BIN");
    if (!es_test_shared() || !bin || access(bin, X_OK) != 0) {
        printf("needs ../shared and ES_BIN: skipped\n");
        return ES_TEST_SKIP;
    }
    test_fixture(bin, "bert_cls", true);
    test_fixture(bin, "roberta_cls", false);
    return es_test_finish();
}
