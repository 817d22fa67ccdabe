/*
 * test_cli_activations.c — the CLI binary ($ES_BIN): `emosteer activations` on fixtures
 * writes the tensors of NAME.ref.gguf with the same names and shapes and values within
 * 2e-3; `emosteer info` describes a model; bad usage exits 2, a bad model exits 1.
 */
#include "gguf.h"
#include "testutil.h"
#include "types.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_activations(const char *bin, const char *fx) {
    char model[1024], refp[1024], out[256], cmd[8192];
    snprintf(model, sizeof model, "%s/%s.f16.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(refp, sizeof refp, "%s/%s.ref.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(out, sizeof out, "/tmp/es_test_cli_act_%d_%s.gguf", (int)getpid(), fx);
    es_gguf *ref = NULL, *got = NULL;
    if (!CHECK(es_gguf_open(refp, &ref) == ES_OK, "%s", es_last_error())) return;
    const es_gguf_tensor *tt = es_gguf_find_tensor(ref, "tokens");
    const int32_t *tok = tt->data;
    int len = snprintf(cmd, sizeof cmd, "'%s' activations -m '%s' -o '%s' -t 2 --tokens ", bin,
                       model, out);
    for (int i = 0; i < tt->ne[0]; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s%d", i ? "," : "", tok[i]);
    snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>&1");
    char msg[4096];
    int rc = es_test_run_cmd(cmd, msg, sizeof msg);
    if (!CHECK(rc == 0, "%s: activations exit %d: %s", fx, rc, msg)) goto done;
    if (!CHECK(es_gguf_open(out, &got) == ES_OK, "%s: output: %s", fx, es_last_error())) goto done;
    /* every reference tensor that is not a steering case must be there, same shape */
    double worst = 0;
    const char *worst_name = "";
    int n_cmp = 0;
    for (int64_t i = 0; i < es_gguf_n_tensors(ref); i++) {
        const es_gguf_tensor *r = es_gguf_tensor_at(ref, i);
        if (strncmp(r->name, "logits.", 7) == 0 || !strcmp(r->name, "v1") ||
            !strcmp(r->name, "v2") || !strncmp(r->name, "gen_", 4))
            continue;
        const es_gguf_tensor *g = es_gguf_find_tensor(got, r->name);
        if (!CHECK(g != NULL, "%s: output lacks %s", fx, r->name)) continue;
        bool same =
            g->type == r->type && g->n_dims == r->n_dims && !memcmp(g->ne, r->ne, sizeof g->ne);
        if (!CHECK(same, "%s: %s has type %d shape [%lld, %lld], want type %d [%lld, %lld]", fx,
                   r->name, g->type, (long long)g->ne[0], (long long)g->ne[1], r->type,
                   (long long)r->ne[0], (long long)r->ne[1]))
            continue;
        if (r->type == ES_TYPE_I32) {
            CHECK(!memcmp(g->data, r->data, r->nbytes), "%s: %s differs", fx, r->name);
            continue;
        }
        size_t where;
        double d = es_test_maxdiff(g->data, r->data, r->nbytes / 4, &where);
        CHECK(d <= 2e-3, "%s: %s max diff %g at token %lld dim %lld", fx, r->name, d,
              (long long)(where / r->ne[0]), (long long)(where % r->ne[0]));
        if (d >= worst) {
            worst = d;
            worst_name = r->name;
        }
        n_cmp++;
    }
    printf("%-8s activations: %d tensors, max diff %.2e (%s)\n", fx, n_cmp, worst, worst_name);
done:
    es_gguf_close(got);
    es_gguf_close(ref);
    remove(out);
}

static void test_info_and_usage(const char *bin) {
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' info '%s/gemma2.f16.gguf' 2>&1", bin,
             es_test_shared_path("fixtures"));
    int rc = es_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "gemma2") && strstr(out, "layers:         3") &&
              strstr(out, "F16") && strstr(out, "vocab:          512"),
          "info gemma2: exit %d:\n%s", rc, out);
    printf("--- emosteer info gemma2.f16.gguf ---\n%s", out);
    snprintf(cmd, sizeof cmd, "'%s' info -m '%s' 2>&1", bin,
             es_test_shared_path("models/demo-16m.q8_0.gguf"));
    rc = es_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "Q8_0") && strstr(out, "llama"), "info demo: exit %d:\n%s", rc,
          out);
    snprintf(cmd, sizeof cmd, "'%s' info --help", bin);
    CHECK(es_test_run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "usage"), "info --help");
    snprintf(cmd, sizeof cmd, "'%s' info --bogus 2>&1", bin);
    CHECK(es_test_run_cmd(cmd, out, sizeof out) == 2, "info --bogus exits 2");
    snprintf(cmd, sizeof cmd, "'%s' info /nonexistent.gguf 2>&1", bin);
    CHECK(es_test_run_cmd(cmd, out, sizeof out) == 1, "info of a missing file exits 1: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' activations --tokens 1,2,x -o /tmp/x.gguf 2>&1", bin);
    CHECK(es_test_run_cmd(cmd, out, sizeof out) == 2, "bad token list exits 2");
    snprintf(cmd, sizeof cmd, "'%s' activations --tokens 1,2 2>&1", bin);
    CHECK(es_test_run_cmd(cmd, out, sizeof out) == 2, "missing -o exits 2");
    snprintf(cmd, sizeof cmd,
             "'%s' activations -m '%s/llama.f16.gguf' --tokens 1,99999 -o /tmp/es_never.gguf 2>&1",
             bin, es_test_shared_path("fixtures"));
    rc = es_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "99999") && access("/tmp/es_never.gguf", F_OK) != 0,
          "out-of-range token exits 1 naming it: %d %s", rc, out);
}

int main(void) {
    const char *bin = getenv("ES_BIN");
    if (!es_test_shared() || !bin || access(bin, X_OK) != 0) {
        printf("needs ../shared and ES_BIN: skipped\n");
        return ES_TEST_SKIP;
    }
    static const char *const fx[] = {"llama", "qwen2", "gemma2", "gemma3", "phi3"};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++)
        test_activations(bin, fx[i]);
    test_info_and_usage(bin);
    return es_test_finish();
}
