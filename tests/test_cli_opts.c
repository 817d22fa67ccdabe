/*
 * test_cli_opts.c — the CLI's option tables through the binary ($ES_BIN): the shared
 * runtime flags are listed with the same ranges in every command's --help; a missing,
 * junk, too-large and too-small value each exit 2 with a message naming the flag and
 * the value (and the "Try ... --help" line, without a doubled prefix); the runtime
 * group reaches activations (--numerics llamacpp --kv-type f16 accepted); an unknown
 * option, an unknown --chat-template and an out-of-range --tokens exit 2.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin;

/* Runs `bin ARGS 2>&1`; the output goes to out[cap]. Returns the exit code. */
static int run(const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The --help line of `flag` (from its start to the end of the line), or "". */
static void help_line(const char *help, const char *flag, char *line, size_t cap) {
    line[0] = '\0';
    for (const char *p = help; (p = strstr(p, flag)) != NULL; p++) {
        /* a line that lists the flag first: "  -t, --threads N ..." or "  --kv-type ..." */
        const char *bol = p;
        while (bol > help && bol[-1] != '\n')
            bol--;
        if (strspn(bol, " ") < 2 || p - bol > 8) continue;
        size_t n = strcspn(p, "\n");
        snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
        return;
    }
}

static void test_same_ranges(void) {
    static const char *const cmds[] = {"generate", "chat",       "activations", "eval",
                                       "extract",  "perplexity", "bench"};
    static const char *const flags[] = {"--threads", "--kv-type", "--numerics", "--model"};
    char ref[4][512];
    static char out[65536];
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        char args[128];
        snprintf(args, sizeof args, "%s --help", cmds[c]);
        int rc = run(args, out, sizeof out);
        CHECK(rc == 0 && strstr(out, "usage: emosteer "), "%s --help: exit %d", cmds[c], rc);
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            char line[512];
            help_line(out, flags[f], line, sizeof line);
            if (!CHECK(line[0], "%s --help lists %s", cmds[c], flags[f])) continue;
            if (c == 0)
                snprintf(ref[f], sizeof ref[f], "%s", line);
            else
                CHECK(!strcmp(line, ref[f]), "%s --help: '%s', generate: '%s'", cmds[c], line,
                      ref[f]);
        }
    }
    CHECK(strstr(ref[0], "[1..512]") != NULL, "-t shows its range: %s", ref[0]);
    printf("same runtime flags in %zu commands' --help, e.g. %s\n", sizeof cmds / sizeof cmds[0],
           ref[0]);
    /* -c wherever it is taken */
    char a[512], b[512];
    run("generate --help", out, sizeof out);
    help_line(out, "--ctx-size", a, sizeof a);
    run("perplexity --help", out, sizeof out);
    help_line(out, "--ctx-size", b, sizeof b);
    CHECK(a[0] && strstr(a, "[8..4194304]") && strstr(b, "[8..4194304]"), "-c ranges: '%s' / '%s'",
          a, b);
}

/* args exits 2 with every needle in the message, and "Try 'emosteer CMD --help'." */
static void usage_error(const char *cmd, const char *args, const char *n1, const char *n2) {
    char full[1024], out[8192], try_line[128];
    snprintf(full, sizeof full, "%s %s", cmd, args);
    int rc = run(full, out, sizeof out);
    snprintf(try_line, sizeof try_line, "Try 'emosteer %s --help'.", cmd);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "emosteer %s: emosteer", cmd);
    CHECK(rc == 2 && strstr(out, n1) && (!n2 || strstr(out, n2)) && strstr(out, try_line) &&
              !strstr(out, prefix),
          "%s: want exit 2 naming '%s'%s%s, got exit %d:\n%s", full, n1, n2 ? " and " : "",
          n2 ? n2 : "", rc, out);
    char *nl = strchr(out, '\n');
    if (nl) *nl = '\0';
    printf("%-48s exit %d: %s\n", full, rc, out);
}

static void test_errors(void) {
    usage_error("generate", "-p x -n", "-n needs a value", "1..1000000");
    usage_error("generate", "-p x -n abc", "-n wants an integer in 1..1000000", "'abc'");
    usage_error("generate", "-p x -n 9999999999", "-n 9999999999 is too large", "at most 1000000");
    usage_error("generate", "-p x -n 0", "-n wants an integer in 1..1000000", "'0'");
    usage_error("chat", "-t 0", "-t wants an integer in 1..512", "'0'");
    usage_error("bench", "-t 100000", "-t 100000 is too large", "at most 512");
    usage_error("perplexity", "-f x -t 2x", "-t wants an integer in 1..512", "'2x'");
    usage_error("eval", "--temp 1e9", "--temp 1e9 is too large", "at most 100");
    usage_error("extract", "--kv-type f8", "--kv-type wants one of f32, f16", "'f8'");
    usage_error("activations", "--numerics", "--numerics needs a value", "fast, llamacpp");
    usage_error("generate", "-p x --chat-template alpaca", "--chat-template", "'alpaca'");
    usage_error("activations", "--tokens 1,-2 -o /tmp/es_never.gguf", "--tokens", "'1,-2'");
    usage_error("generate", "-p x --layers 5000 --ev e --steer joy=1", "--layers", "'5000'");
    usage_error("generate", "--bogus", "unknown option '--bogus'", NULL);
    usage_error("info", "--bogus", "unknown option '--bogus'", NULL);
    usage_error("random-model", "--like nope -o x", "--like wants one of", "'nope'");
}

static void test_activations_runtime(void) {
    char out[8192], args[1024], path[256];
    snprintf(path, sizeof path, "/tmp/es_test_cli_opts_%d.gguf", (int)getpid());
    snprintf(args, sizeof args,
             "activations -m '%s/models/demo-16m.q8_0.gguf' --tokens 1,2,3 -t 2 "
             "--numerics llamacpp --kv-type f16 -o '%s'",
             es_test_source(), path);
    int rc = run(args, out, sizeof out);
    CHECK(rc == 0 && access(path, F_OK) == 0,
          "activations --numerics llamacpp --kv-type f16: exit %d:\n%s", rc, out);
    remove(path);
}

int main(void) {
    bin = getenv("ES_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        printf("needs ES_BIN: skipped\n");
        return ES_TEST_SKIP;
    }
    test_same_ranges();
    test_errors();
    char model[1024];
    snprintf(model, sizeof model, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    if (access(model, R_OK) == 0)
        test_activations_runtime();
    else
        printf("no demo model: the activations run is skipped\n");
    return es_test_finish();
}
