/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int es_test_passed;
int es_test_failed;

bool es_test_check(bool cond, const char *file, int line, const char *fmt, ...) {
    if (cond) {
        es_test_passed++;
        return true;
    }
    es_test_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return false;
}

int es_test_finish(void) {
    printf("%d passed, %d failed\n", es_test_passed, es_test_failed);
    return es_test_failed ? 1 : 0;
}

int es_test_skip_code(void) {
    const char *req = getenv("ES_REQUIRE_SHARED"), *ci = getenv("CI");
    bool required =
        (req && *req && strcmp(req, "0") != 0) || (ci && *ci && strcmp(ci, "false") != 0);
    if (!required) return 77;
    fprintf(stderr, "FAIL: this test needs the shared data folder (../shared or $ES_SHARED), "
                    "and ES_REQUIRE_SHARED/CI is set: it fails instead of skipping\n");
    return 1;
}

static bool is_dir(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *es_test_shared(void) {
    const char *env = getenv("ES_SHARED");
    if (is_dir(env)) return env;
    if (is_dir("../shared")) return "../shared";
    return NULL;
}

const char *es_test_shared_path(const char *rel) {
    static _Thread_local char buf[4096];
    const char *s = es_test_shared();
    if (!s) return NULL;
    snprintf(buf, sizeof buf, "%s/%s", s, rel);
    return buf;
}

const char *es_test_source(void) {
    const char *env = getenv("ES_SOURCE");
    return env && *env ? env : ".";
}

char *es_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

double es_test_maxdiff(const float *a, const float *b, size_t n, size_t *where) {
    double m = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) d = INFINITY;
        if (d > m) {
            m = d;
            w = i;
        }
    }
    if (where) *where = w;
    return m;
}

int es_test_run_cmd(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    if (out && cap) {
        size_t n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
    }
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* src made absolute against the working directory into dst. */
static void absolute(const char *src, char *dst, size_t cap) {
    char cwd[2048];
    if (src[0] == '/' || !getcwd(cwd, sizeof cwd))
        snprintf(dst, cap, "%s", src);
    else
        snprintf(dst, cap, "%s/%s", cwd, src);
}

bool es_test_demo(const char **bin, char *model, size_t model_cap, char *ev, size_t ev_cap) {
    char rel[2048];
    *bin = getenv("ES_BIN");
    snprintf(rel, sizeof rel, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    absolute(rel, model, model_cap);
    snprintf(rel, sizeof rel, "%s/models/demo-16m.ev.gguf", es_test_source());
    absolute(rel, ev, ev_cap);
    if (!*bin || access(*bin, X_OK) != 0 || access(model, R_OK) != 0 || access(ev, R_OK) != 0) {
        printf("needs ES_BIN and the demo model with its vectors: skipped\n");
        return false;
    }
    return true;
}

bool es_test_tmpdir(const char *tag, char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/es_test_%s_%d", tag, (int)getpid());
    return es_test_check(mkdir(dir, 0777) == 0, __FILE__, __LINE__, "mkdir %s", dir);
}

void es_test_tmpdir_done(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (es_test_failed == 0 && system(cmd) != 0) printf("could not remove %s\n", dir);
}
