/*
 * test_cli_control_vector.c — llama.cpp-style control vectors through the CLI binary
 * ($ES_BIN): for every fixture of ../shared/fixtures, a control vector GGUF holding
 * a1*v1 as direction.1 (block_out of block 1), given to `emosteer activations` as
 *   --control-vector-scaled FILE 1.0, --control-vector FILE, and FILE:2 for a file
 *   holding 0.5*a1*v1,
 * reproduces the reference logits.steer_block (a1*v1 added to block_out.1 at every
 * position) within 2e-3, and an unsteered run differs from it.
 */
#include "gguf.h"
#include "testutil.h"
#include "types.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes scale * a1 * v1 as a control vector (direction.1) to path. */
static bool write_cv(const float *v1, int n, float a1, float scale, const char *path) {
    es_ev_set *set = NULL;
    float *v = malloc((size_t)n * sizeof *v);
    bool ok = v && es_ev_set_create(n, ES_HOOK_BLOCK_OUT, &set) == ES_OK;
    for (int i = 0; ok && i < n; i++)
        v[i] = a1 * v1[i];
    ok = ok && es_ev_set_put(set, "steer", 1, v) == ES_OK &&
         es_ev_set_export_control_vector(set, "steer", scale, false, path) == ES_OK;
    es_ev_set_free(set);
    free(v);
    return ok;
}

/* Runs activations with the extra flags and returns max |logits - want| (-1 on failure). */
static double run_and_compare(const char *bin, const char *model, const int32_t *tok, int n_tok,
                              const char *flags, const char *out, const es_gguf_tensor *want,
                              const char *fx) {
    char cmd[8192], msg[4096];
    int len = snprintf(cmd, sizeof cmd, "'%s' activations -m '%s' -o '%s' -t 2 %s --tokens ", bin,
                       model, out, flags);
    for (int i = 0; i < n_tok; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s%d", i ? "," : "", tok[i]);
    snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>&1");
    int rc = es_test_run_cmd(cmd, msg, sizeof msg);
    if (!CHECK(rc == 0, "%s: activations %s exit %d: %s", fx, flags, rc, msg)) return -1;
    es_gguf *got = NULL;
    if (!CHECK(es_gguf_open(out, &got) == ES_OK, "%s: output: %s", fx, es_last_error())) return -1;
    const es_gguf_tensor *g = es_gguf_find_tensor(got, "logits");
    double d = -1;
    if (CHECK(g && g->nbytes == want->nbytes, "%s: logits shape", fx))
        d = es_test_maxdiff(g->data, want->data, want->nbytes / 4, NULL);
    es_gguf_close(got);
    remove(out);
    return d;
}

static void test_fixture(const char *bin, const char *fx) {
    char model[1024], refp[1024], cv1[256], cvh[256], out[256], flags[1024];
    snprintf(model, sizeof model, "%s/%s.f16.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(refp, sizeof refp, "%s/%s.ref.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(cv1, sizeof cv1, "/tmp/es_test_cv_%d_%s_1.gguf", (int)getpid(), fx);
    snprintf(cvh, sizeof cvh, "/tmp/es_test_cv_%d_%s_half.gguf", (int)getpid(), fx);
    snprintf(out, sizeof out, "/tmp/es_test_cv_%d_%s_out.gguf", (int)getpid(), fx);
    es_gguf *ref = NULL;
    if (!CHECK(es_gguf_open(refp, &ref) == ES_OK, "%s: %s", fx, es_last_error())) return;
    const es_gguf_tensor *tt = es_gguf_find_tensor(ref, "tokens");
    const es_gguf_tensor *v1 = es_gguf_find_tensor(ref, "v1");
    const es_gguf_tensor *want = es_gguf_find_tensor(ref, "logits.steer_block");
    const es_gguf_tensor *plain = es_gguf_find_tensor(ref, "logits");
    float a1 = 0;
    if (!CHECK(tt && v1 && want && plain && v1->type == ES_TYPE_F32 &&
                   es_gguf_get_f32(ref, "reference.a1", &a1) == ES_OK,
               "%s: reference lacks tokens/v1/logits.steer_block/reference.a1", fx))
        goto done;
    int n = (int)v1->ne[0];
    if (!CHECK(write_cv(v1->data, n, a1, 1.0f, cv1) && write_cv(v1->data, n, a1, 0.5f, cvh),
               "%s: writing control vectors: %s", fx, es_last_error()))
        goto done;
    const int32_t *tok = tt->data;
    int n_tok = (int)tt->ne[0];
    double d_plain = run_and_compare(bin, model, tok, n_tok, "", out, want, fx);
    snprintf(flags, sizeof flags, "--control-vector-scaled '%s' 1.0", cv1);
    double d_scaled = run_and_compare(bin, model, tok, n_tok, flags, out, want, fx);
    snprintf(flags, sizeof flags, "--control-vector '%s'", cv1);
    double d_cv = run_and_compare(bin, model, tok, n_tok, flags, out, want, fx);
    snprintf(flags, sizeof flags, "--control-vector-scaled '%s:2'", cvh);
    double d_colon = run_and_compare(bin, model, tok, n_tok, flags, out, want, fx);
    CHECK(d_scaled >= 0 && d_scaled <= 2e-3, "%s: --control-vector-scaled FILE 1.0: max diff %g",
          fx, d_scaled);
    CHECK(d_cv >= 0 && d_cv <= 2e-3, "%s: --control-vector FILE: max diff %g", fx, d_cv);
    CHECK(d_colon >= 0 && d_colon <= 2e-3,
          "%s: --control-vector-scaled FILE:2 (0.5 a1 v1): max diff %g", fx, d_colon);
    CHECK(d_plain > 0.05, "%s: unsteered logits should differ from steer_block (max diff %g)", fx,
          d_plain);
    printf("%-8s a1 %.3f  max |logits - steer_block|: scaled 1.0 %.2e, plain cv %.2e, FILE:2 %.2e; "
           "unsteered %.3f\n",
           fx, (double)a1, d_scaled, d_cv, d_colon, d_plain);
done:
    es_gguf_close(ref);
    remove(cv1);
    remove(cvh);
}

int main(void) {
    const char *bin = getenv("ES_BIN");
    if (!es_test_shared() || !bin || access(bin, X_OK) != 0) {
        printf("needs ../shared and ES_BIN: skipped\n");
        return ES_TEST_SKIP;
    }
    static const char *const fx[] = {"llama",    "llama31", "mistral",  "qwen2",       "qwen3",
                                     "gemma",    "gemma2",  "gemma3",   "phi3",        "qwen3moe",
                                     "minicpm3", "minicpm", "baichuan", "baichuan13b", "qwen"};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++)
        test_fixture(bin, fx[i]);
    return es_test_finish();
}
