/*
 * test_cli_errors.c — behaviours that used to be silently wrong, through the binary
 * ($ES_BIN) on the demo model: each case is an argv, the exit code it must give and
 * substrings its stderr must (and one it must not) contain. Temporary files live under
 * /tmp with the pid in their names and are removed at the end.
 */
#include "emosteer.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin;
static char model[1024], ev[1024];
static char big[256], nul[256], small[256], huge[256], nanm[256]; /* temporary files */

/* Runs `bin ARGS` with stdout discarded; stderr goes to err[cap]. Returns the exit code. */
static int run(const char *args, char *err, size_t cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1 >/dev/null", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(err, 1, cap - 1, p);
    err[n] = '\0';
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Replaces {M} (model), {EV}, {BIG}, {NUL}, {SMALL}, {HUGE}, {NANM} in tmpl; the result goes to
 * out[cap]. */
static void expand(const char *tmpl, char *out, size_t cap) {
    static const struct {
        const char *key, *val;
    } subst[] = {
        {"{M}", model},     {"{EV}", ev},     {"{BIG}", big},   {"{NUL}", nul},
        {"{SMALL}", small}, {"{HUGE}", huge}, {"{NANM}", nanm},
    };
    size_t n = 0;
    while (*tmpl && n + 1 < cap) {
        bool done = false;
        for (size_t k = 0; k < sizeof subst / sizeof subst[0] && !done; k++) {
            size_t kl = strlen(subst[k].key);
            if (!strncmp(tmpl, subst[k].key, kl)) {
                n += (size_t)snprintf(out + n, cap - n, "'%s'", subst[k].val);
                if (n >= cap) n = cap - 1;
                tmpl += kl;
                done = true;
            }
        }
        if (!done) out[n++] = *tmpl++;
    }
    out[n] = '\0';
}

typedef struct cli_case {
    const char *what;
    const char *args;     /* with {M}, {EV}, ... */
    int rc;               /* expected exit code */
    const char *want[3];  /* substrings stderr must contain (NULL: fewer) */
    const char *not_want; /* a substring it must not contain, or NULL */
} cli_case;

static const cli_case cases[] = {
    /* 1. context length: honoured past the trained length, with a warning */
    {"-c above the trained length warns",
     "generate -m {M} -p hi -n 2 -c 4096",
     0,
     {"emosteer generate: warning: -c 4096 is above the 1024 positions the model was trained for",
      "quality degrades past them"},
     NULL},
    {"default -c is the trained length: no warning",
     "generate -m {M} -p hi -n 2",
     0,
     {"generate: "},
     "warning"},
    /* 2. generation that fills the context says so, exit 3 */
    {"context full",
     "generate -m {M} -p 'Once upon a time' -c 64 -n 200 --ignore-eos",
     3,
     {"stopped: the context (64 positions) is full"},
     NULL},
    /* 3. a prompt longer than the context: refused before the context is made, not echoed */
    {"prompt longer than the context",
     "generate -m {M} -f {BIG} -n 4",
     1,
     {"emosteer generate: the prompt has ", " tokens; the context holds 1024 (-c)"},
     NULL},
    {"prompt longer than -c",
     "generate -m {M} -p 'the letter arrived and she smiled at the window' -c 8",
     1,
     {"tokens; the context holds 8 (-c)"},
     NULL},
    {"perplexity: fewer tokens than one chunk",
     "perplexity -m {M} -f {SMALL} -c 2048",
     1,
     {"warning: -c 2048 is above the 1024 positions", "fewer than one chunk of 2048"},
     NULL},
    /* 4. prompt files: one reader; directories and NUL bytes are errors */
    {"generate -f DIRECTORY",
     "generate -m {M} -f /tmp",
     1,
     {"emosteer generate: /tmp: is a directory, not a file"},
     NULL},
    {"generate -f with a NUL byte", "generate -m {M} -f {NUL}", 1, {"NUL byte at offset 5"}, NULL},
    {"generate -f missing",
     "generate -m {M} -f /nonexistent/p.txt",
     1,
     {"/nonexistent/p.txt: cannot open"},
     "p.txt: /nonexistent"},
    {"perplexity -f DIRECTORY",
     "perplexity -m {M} -f /tmp",
     1,
     {"/tmp: is a directory, not a file"},
     NULL},
    {"perplexity -f with a NUL byte",
     "perplexity -m {M} -f {NUL}",
     1,
     {"NUL byte at offset 5"},
     NULL},
    /* 5. --steer that names nothing is a usage error */
    {"--steer ''",
     "generate -m {M} -p hi -n 2 --ev {EV} --steer ''",
     2,
     {"--steer '' names no emotion"},
     NULL},
    {"--steer ,,",
     "generate -m {M} -p hi -n 2 --ev {EV} --steer ,,",
     2,
     {"--steer ',,' names no emotion"},
     NULL},
    {"--steer unknown emotion",
     "generate -m {M} -p hi -n 2 --ev {EV} --steer nosuch=1",
     2,
     {"emotion 'nosuch' is not in"},
     NULL},
    /* 6. absurd strengths are usage errors naming the value */
    {"--steer joy=1e30",
     "generate -m {M} -p hi -n 2 --ev {EV} --steer joy=1e30",
     2,
     {"--steer", "-1000..1000", "'joy=1e30'"},
     NULL},
    {"--steer joy=-2000",
     "generate -m {M} -p hi -n 2 --ev {EV} --steer joy=-2000",
     2,
     {"'joy=-2000'"},
     NULL},
    {"--control-vector-scaled F 1e30",
     "generate -m {M} -p hi -n 2 --control-vector-scaled {EV} 1e30",
     2,
     {"--control-vector-scaled", "-1000..1000", "'1e30'"},
     NULL},
    /* 6. non-finite logits fail the run (were: <unk> tokens or PPL = nan, exit 0) */
    {"huge vectors: non-finite logits",
     "generate -m {M} -p hi -n 4 --ev {HUGE} --steer joy=1",
     1,
     {"non-finite logits at batch token", "the weights or the steering vectors produce NaN/Inf"},
     NULL},
    {"NaN weight: generate", "generate -m {NANM} -p hi -n 4", 1, {"non-finite logits"}, NULL},
    {"NaN weight: perplexity",
     "perplexity -m {NANM} -f {BIG} -c 64 --chunks 1",
     1,
     {"non-finite logits"},
     "PPL"},
    {"NaN weight: --check-finite at load",
     "generate -m {NANM} -p hi -n 4 --check-finite",
     1,
     {"output_norm.weight"},
     NULL},
    /* 7. messages: the value quoted, no doubled path, usage errors exit 2 */
    {"--control-vector-scaled F nan",
     "generate -m {M} -p hi -n 2 --control-vector-scaled {EV} nan",
     2,
     {"'nan'"},
     NULL},
    {"-t too large", "generate -m {M} -p hi -t 100000", 2, {"-t", "100000", "too large"}, NULL},
    {"-c too small", "generate -m {M} -p hi -c 2", 2, {"-c", "'2'"}, NULL},
    {"--ev missing: the path once",
     "generate -m {M} -p hi --ev /nonexistent/x.ev.gguf --steer joy=1",
     1,
     {"/nonexistent/x.ev.gguf"},
     "x.ev.gguf: ev: cannot open /nonexistent"},
};

static bool write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static bool setup(void) {
    snprintf(model, sizeof model, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    snprintf(ev, sizeof ev, "%s/models/demo-16m.ev.gguf", es_test_source());
    int pid = (int)getpid();
    snprintf(big, sizeof big, "/tmp/es_cli_errors_%d_big.txt", pid);
    snprintf(nul, sizeof nul, "/tmp/es_cli_errors_%d_nul.txt", pid);
    snprintf(small, sizeof small, "/tmp/es_cli_errors_%d_small.txt", pid);
    /* 1 MB of words, far more tokens than the demo's 1024 positions */
    size_t n = 1 << 20;
    char *text = malloc(n);
    if (!text) return false;
    static const char words[] = "the letter arrived and she smiled at the window ";
    for (size_t i = 0; i < n; i++)
        text[i] = words[i % (sizeof words - 1)];
    bool ok = write_file(big, text, n);
    free(text);
    static const char with_nul[] = "Hello\0world";
    ok = ok && write_file(nul, with_nul, sizeof with_nul - 1);
    ok = ok && write_file(small, "A short text.\n", 14);
    /* the demo's vectors with joy times 1e30: finite, but the steered states overflow */
    snprintf(huge, sizeof huge, "/tmp/es_cli_errors_%d_huge.ev.gguf", pid);
    es_ev_set *set = NULL;
    ok = ok && es_ev_set_load(ev, NULL, &set) == ES_OK;
    int n_embd = set ? es_ev_set_n_embd(set) : 0;
    float *v = malloc(sizeof *v * (size_t)(n_embd > 0 ? n_embd : 1));
    for (int l = 0; ok && v && l < 64; l++) {
        const float *src = es_ev_set_get(set, "joy", l);
        if (!src) continue;
        for (int i = 0; i < n_embd; i++)
            v[i] = src[i] * 1e30f;
        ok = es_ev_set_put(set, "joy", l, v) == ES_OK;
    }
    ok = ok && v && es_ev_set_save(set, huge) == ES_OK;
    free(v);
    es_ev_set_free(set);
    /* a broken model: the demo with output_norm.weight[0] = Inf (a NaN would vanish in the
     * Q8_0 quantization of the activations) */
    snprintf(nanm, sizeof nanm, "/tmp/es_cli_errors_%d_nan.gguf", pid);
    char *img = NULL;
    size_t img_len = 0;
    es_gguf *g = NULL;
    ok = ok && es_file_read(model, (size_t)1 << 30, &img, &img_len) == ES_OK &&
         es_gguf_open_memory(img, img_len, &g) == ES_OK;
    const es_gguf_tensor *t = g ? es_gguf_find_tensor(g, "output_norm.weight") : NULL;
    ok = ok && t && t->type == ES_TYPE_F32;
    if (ok) {
        float qnan = INFINITY;
        memcpy(img + ((const char *)t->data - img), &qnan, sizeof qnan);
    }
    es_gguf_close(g);
    ok = ok && write_file(nanm, img, img_len);
    free(img);
    return ok;
}

int main(void) {
    bin = getenv("ES_BIN");
    if (!bin) {
        fprintf(stderr, "ES_BIN is not set\n");
        return 1;
    }
    if (!CHECK(setup(), "writing the temporary files")) return es_test_finish();
    static char err[1 << 16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cli_case *c = &cases[i];
        char args[4096];
        expand(c->args, args, sizeof args);
        int rc = run(args, err, sizeof err);
        bool ok = CHECK(rc == c->rc, "%s: `%s` exits %d, want %d; stderr:\n%s", c->what, c->args,
                        rc, c->rc, err);
        for (int k = 0; k < 3 && c->want[k]; k++)
            ok &= CHECK(strstr(err, c->want[k]) != NULL, "%s: stderr has '%s'; it is:\n%s", c->what,
                        c->want[k], err);
        if (c->not_want)
            ok &= CHECK(!strstr(err, c->not_want), "%s: stderr lacks '%s'; it is:\n%s", c->what,
                        c->not_want, err);
        if (ok) {
            /* the line holding the first expected substring, as the sample message */
            const char *hit = c->want[0] ? strstr(err, c->want[0]) : err;
            while (hit > err && hit[-1] != '\n')
                hit--;
            printf("ok   exit %d  %-40s %.*s\n", rc, c->what, (int)strcspn(hit, "\n"), hit);
        }
    }
    unlink(big);
    unlink(nul);
    unlink(small);
    unlink(huge);
    unlink(nanm);
    return es_test_finish();
}
