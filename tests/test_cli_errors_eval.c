/*
 * test_cli_errors_eval.c — behaviours of the binary ($ES_BIN) that used to be silently
 * wrong, each now a clear error or a documented behaviour, as a table: the arguments,
 * the exit code, substrings the stderr must hold, and files that must not exist after.
 *
 *   control vectors: --control-vector of a multi-emotion .ev.gguf is a usage error that
 *     names its emotions and points to --ev F --steer E=A; a one-direction control
 *     vector (written here from the demo vectors) still works.
 *   eval --resume: a record of generations.jsonl with a score outside its range, a NaN
 *     (even on the last line, when that line is complete), a seed, prompt or n_tokens
 *     this run would not produce is an error naming path:line and the field (exit 1);
 *     a record of another grid point (alpha, emotion) is kept out of the results with
 *     a note counting it.
 *   output paths: extract/random-model -o '' or -o DIR, extract -o in a missing folder,
 *     eval -o '' or -o FILE are usage errors before any work; extract --resume without
 *     a checkpoint starts fresh with a note; a failed extract removes a checkpoint it
 *     made that holds nothing and keeps one that was there; a failed eval that made
 *     nothing removes its empty log, settings and folder, but never a user's folder.
 *   docs: README's steering claim matches docs/steering-demo.md (joy dips at alpha 1),
 *     its bench synopsis the real defaults (512/128, as bench --help), and the default
 *     eval layers read the same in README, eval --help, run-settings.txt, results.json.
 *
 * Everything runs on the demo model (models/demo-16m.q8_0.gguf, models/demo-16m.ev.gguf);
 * temporary files live in /tmp/es_errx_<pid> and are removed at the end.
 */
#include "testutil.h"

#include "emosteer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin;
static char tmpdir[128], model[1024], evfile[1024];

/* Replaces @T@ (the temp folder), @M@ (the model) and @EV@ (the demo vectors) in s. */
static void expand(const char *s, char *out, size_t cap) {
    size_t n = 0;
    while (*s && n + 1 < cap) {
        const char *sub = NULL;
        size_t skip = 0;
        if (!strncmp(s, "@T@", 3))
            sub = tmpdir, skip = 3;
        else if (!strncmp(s, "@M@", 3))
            sub = model, skip = 3;
        else if (!strncmp(s, "@EV@", 4))
            sub = evfile, skip = 4;
        if (sub) {
            n += (size_t)snprintf(out + n, cap - n, "%s", sub);
            if (n >= cap) n = cap - 1;
            s += skip;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
}

/* Runs `bin ARGS` (expanded) with stdout dropped (kept with `with_stdout`); stderr goes
 * to err[cap]. Returns the exit code. */
static int run(const char *args, bool with_stdout, char *err, size_t cap) {
    char ex[4096], cmd[4400];
    expand(args, ex, sizeof ex);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1%s", bin, ex, with_stdout ? "" : " >/dev/null");
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

static bool exists(const char *path_tmpl) {
    char p[2048];
    expand(path_tmpl, p, sizeof p);
    return access(p, F_OK) == 0;
}

/* ---- setups ------------------------------------------------------------------------ */

/* @T@/cv.gguf: the demo's joy vectors as a llama.cpp control vector (one direction). */
static bool setup_cv(const char *arg) {
    (void)arg;
    es_ev_set *ev = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/cv.gguf", tmpdir);
    bool ok = es_ev_set_load(evfile, NULL, &ev) == ES_OK &&
              es_ev_set_export_control_vector(ev, "joy", 1.0f, true, path) == ES_OK;
    es_ev_set_free(ev);
    return CHECK(ok, "writing %s: %s", path, es_last_error());
}

#define EVAL_GRID "--emotions joy,anger --alphas 0,2 --n-queries 2 -n 8"

/* @T@/run: a finished eval of EVAL_GRID (8 responses); @T@/gen.base: its log. */
static bool setup_eval_run(void) {
    static int done = -1;
    if (done >= 0) return done;
    char err[8192];
    int rc = run("eval -m @M@ --ev @EV@ -t 2 " EVAL_GRID " -o @T@/run", false, err, sizeof err);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp '%s/run/generations.jsonl' '%s/gen.base'", tmpdir, tmpdir);
    done = CHECK(rc == 0 && system(cmd) == 0, "the eval run to resume: exit %d:\n%s", rc, err);
    return done;
}

/* Restores @T@/run/generations.jsonl from the base, then edits it: arg is
 * "LINE|FROM|TO[|append]": in line LINE the first FROM becomes TO, the line replaced
 * (or, with "append", a copy appended at the end). */
static bool setup_edit_log(const char *arg) {
    if (!setup_eval_run()) return false;
    char spec[512], base[256], path[256];
    snprintf(spec, sizeof spec, "%s", arg);
    char *save = NULL, *ln = strtok_r(spec, "|", &save), *from = strtok_r(NULL, "|", &save),
         *to = strtok_r(NULL, "|", &save), *mode = strtok_r(NULL, "|", &save);
    bool append = mode && !strcmp(mode, "append");
    snprintf(base, sizeof base, "%s/gen.base", tmpdir);
    snprintf(path, sizeof path, "%s/run/generations.jsonl", tmpdir);
    char *text = es_test_read_file(base, NULL);
    FILE *f = fopen(path, "w");
    bool ok = text && f && ln && from && to, edited = false;
    int want = ln ? atoi(ln) : 0, k = 0;
    char *extra = NULL;
    for (char *line = text, *next; ok && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        const char *at = ++k == want ? strstr(line, from) : NULL;
        char *edit = NULL;
        if (at && asprintf(&edit, "%.*s%s%s", (int)(at - line), line, to, at + strlen(from)) > 0)
            edited = true;
        fprintf(f, "%s\n", edit && !append ? edit : line);
        if (edit && append)
            extra = edit;
        else
            free(edit);
    }
    if (extra) fprintf(f, "%s\n", extra);
    free(extra);
    ok = (f && fclose(f) == 0) && ok;
    free(text);
    return CHECK(ok && edited, "editing line %d of %s ('%s')", want, path, arg);
}

/* Creates the file arg (expanded; "junk" in it), or the folder when arg ends in '/'. */
static bool setup_touch(const char *arg) {
    char p[1024];
    expand(arg, p, sizeof p);
    size_t n = strlen(p);
    if (n && p[n - 1] == '/') return CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
    FILE *f = fopen(p, "w");
    bool ok = f && fputs("junk\n", f) >= 0;
    ok = (f && fclose(f) == 0) && ok;
    return CHECK(ok, "writing %s", p);
}

#define RESUME "eval -m @M@ --ev @EV@ -t 2 " EVAL_GRID " -o @T@/run --resume"

typedef struct err_case {
    const char *name;
    bool (*setup)(const char *arg); /* may be NULL */
    const char *setup_arg;
    const char *args;       /* after the binary; @T@, @M@, @EV@ expanded */
    int rc;                 /* expected exit code */
    const char *want[4];    /* substrings of stderr (NULL-terminated) */
    const char *absent[3];  /* paths that must not exist afterwards */
    bool with_stdout;       /* match the substrings in stdout too (--help) */
    const char *unwanted;   /* a substring stderr must not hold, or NULL */
    const char *present[2]; /* paths that must still exist afterwards (a user's files) */
} err_case;

static const err_case cases[] = {
    /* 1. control vectors */
    {.name = "--control-vector of a 6-emotion file",
     .args = "activations -m @M@ -t 2 --tokens 1,2,3 -o @T@/act.gguf --control-vector @EV@",
     .rc = 2,
     .want = {"holds 6 emotions", "joy sadness anger fear disgust base", "--ev",
              "--steer EMOTION=ALPHA"},
     .absent = {"@T@/act.gguf"}},
    {.name = "--control-vector-scaled of a 6-emotion file",
     .args =
         "activations -m @M@ -t 2 --tokens 1,2,3 -o @T@/act.gguf --control-vector-scaled @EV@ 0.5",
     .rc = 2,
     .want = {"holds 6 emotions", "--steer EMOTION=ALPHA"},
     .absent = {"@T@/act.gguf"}},
    {.name = "--control-vector-scaled FILE:SCALE of a 6-emotion file",
     .args =
         "activations -m @M@ -t 2 --tokens 1,2,3 -o @T@/act.gguf --control-vector-scaled @EV@:2",
     .rc = 2,
     .want = {"holds 6 emotions"},
     .absent = {"@T@/act.gguf"}},
    {.name = "--control-vector of one direction still works",
     .setup = setup_cv,
     .args = "activations -m @M@ -t 2 --tokens 1,2,3 -o @T@/act.gguf --control-vector @T@/cv.gguf",
     .rc = 0},
    /* 2. eval --resume checks every record of generations.jsonl */
    {.name = "resume: a score outside [0, 1]",
     .setup = setup_edit_log,
     .setup_arg = "2|\"scores\":{\"anger\":|\"scores\":{\"anger\":-0.25,\"anger_was\":",
     .args = RESUME,
     .rc = 1,
     .want = {"generations.jsonl:2:", "\"scores\".\"anger\"",
              "-0.25 is not a probability in [0, 1]"}},
    {.name = "resume: a NaN perplexity",
     .setup = setup_edit_log,
     .setup_arg = "3|\"ppl\":|\"ppl\":NaN,\"ppl_was\":",
     .args = RESUME,
     .rc = 1,
     .want = {"generations.jsonl:3:", "invalid JSON"}},
    {.name = "resume: a NaN on the last, complete line (not a torn write)",
     .setup = setup_edit_log,
     .setup_arg = "8|\"topic\":|\"topic\":NaN,\"topic_was\":",
     .args = RESUME,
     .rc = 1,
     .want = {"generations.jsonl:8:", "invalid JSON"}},
    {.name = "resume: a topic score outside [-1, 1]",
     .setup = setup_edit_log,
     .setup_arg = "4|\"topic\":|\"topic\":2.5,\"topic_was\":",
     .args = RESUME,
     .rc = 1,
     .want = {"generations.jsonl:4:", "\"topic\": 2.5 is outside [-1, 1]"}},
    {.name = "resume: a seed this run does not draw",
     .setup = setup_edit_log,
     .setup_arg = "5|\"seed\":|\"seed\":7,\"seed_was\":",
     .args = RESUME,
     .rc = 1,
     .want = {"generations.jsonl:5:", "\"seed\": 7 is not the seed this run draws"}},
    {.name = "resume: a prompt that is not the query's",
     .setup = setup_edit_log,
     .setup_arg = "6|\"prompt\":\"|\"prompt\":\"Not it: ",
     .args = RESUME,
     .rc = 1,
     .want = {"generations.jsonl:6:", "\"prompt\""}},
    {.name = "resume: more tokens than -n",
     .setup = setup_edit_log,
     .setup_arg = "7|\"n_tokens\":|\"n_tokens\":99,\"n_tokens_was\":",
     .args = RESUME,
     .rc = 1,
     .want = {"generations.jsonl:7:", "\"n_tokens\": 99 is more than this run's -n 8"}},
    {.name = "resume: a foreign alpha is kept out, with a note",
     .setup = setup_edit_log,
     .setup_arg = "1|\"alpha\":0.0,|\"alpha\":3.0,|append",
     .args = RESUME,
     .rc = 0,
     .want = {"note: 1 responses", "outside this run's grid", "0 to generate", "(8 responses"}},
    {.name = "resume: a foreign emotion is kept out, with a note",
     .setup = setup_edit_log,
     .setup_arg = "1|\"emotion\":\"joy\"|\"emotion\":\"fear\"|append",
     .args = RESUME,
     .rc = 0,
     .want = {"note: 1 responses", "outside this run's grid", "0 to generate", "(8 responses"}},
    {.name = "resume: a clean log resumes to nothing, without a note",
     .setup = setup_edit_log,
     .setup_arg = "1|{|{",
     .args = RESUME,
     .rc = 0,
     .want = {"0 to generate"},
     .unwanted = "note:"},
    /* 3. output paths are checked before any work; a failed run leaves no litter */
    {.name = "extract -o ''",
     .args = "extract -m @M@ -t 2 --emotions joy --n-queries 1 -n 4 -o ''",
     .rc = 2,
     .want = {"-o '': the output path is empty"},
     .unwanted = "samples"},
    {.name = "extract -o DIR",
     .args = "extract -m @M@ -t 2 --emotions joy --n-queries 1 -n 4 -o @T@",
     .rc = 2,
     .want = {"-o @T@: is a folder", "@T@/out.ev.gguf"},
     .absent = {"@T@.partial"},
     .unwanted = "samples"},
    {.name = "extract -o in a missing folder",
     .args = "extract -m @M@ -t 2 --emotions joy --n-queries 1 -n 4 -o @T@/nodir/x.ev.gguf",
     .rc = 2,
     .want = {"the folder @T@/nodir does not exist"},
     .unwanted = "samples"},
    {.name = "random-model -o DIR",
     .args = "random-model --like demo-16m -o @T@",
     .rc = 2,
     .want = {"-o @T@: is a folder", "@T@/model.gguf"},
     .unwanted = "shape"},
    {.name = "random-model -o ''",
     .args = "random-model --like demo-16m -o ''",
     .rc = 2,
     .want = {"-o '': the output path is empty"}},
    {.name = "extract --resume without a checkpoint starts fresh, with a note",
     .args = "extract -m @M@ -t 2 --emotions joy --n-queries 1 -n 4 --resume -o @T@/fresh.ev.gguf",
     .rc = 0,
     .want = {"no checkpoint at @T@/fresh.ev.gguf.partial; starting fresh",
              "wrote @T@/fresh.ev.gguf"},
     .absent = {"@T@/fresh.ev.gguf.partial"},
     .present = {"@T@/fresh.ev.gguf"},
     .unwanted = "resumed"},
    {.name = "extract that fails after opening its checkpoint removes it",
     .args = "extract -m @M@ -t 2 --emotions joy --n-queries 1 -n 5000 -o @T@/big.ev.gguf",
     .rc = 1,
     .want = {"lower -n"},
     .absent = {"@T@/big.ev.gguf.partial", "@T@/big.ev.gguf"}},
    {.name = "extract --resume of a bad checkpoint keeps the user's file",
     .setup = setup_touch,
     .setup_arg = "@T@/keep.ev.gguf.partial",
     .args = "extract -m @M@ -t 2 --emotions joy --n-queries 1 -n 4 --resume -o @T@/keep.ev.gguf",
     .rc = 1,
     .want = {"checkpoint"},
     .absent = {"@T@/keep.ev.gguf"},
     .present = {"@T@/keep.ev.gguf.partial"}},
    {.name = "eval -o ''",
     .args = "eval -m @M@ --ev @EV@ -t 2 --emotions joy --alphas 0 --n-queries 1 -n 4 -o ''",
     .rc = 2,
     .want = {"-o '': the output folder is empty"},
     .unwanted = "hashing"},
    {.name = "eval -o FILE",
     .setup = setup_touch,
     .setup_arg = "@T@/afile",
     .args = "eval -m @M@ --ev @EV@ -t 2 --emotions joy --alphas 0 --n-queries 1 -n 4 -o @T@/afile",
     .rc = 2,
     .want = {"-o @T@/afile: is a file, not a folder"},
     .unwanted = "hashing"},
    {.name = "eval that fails before a response removes the folder it made",
     .args =
         "eval -m @M@ --ev @EV@ -t 2 --emotions joy --alphas 0 --n-queries 1 -n 5000 -o @T@/evfail",
     .rc = 1,
     .want = {"lower -n"},
     .absent = {"@T@/evfail"}},
    {.name = "eval that fails in a user's folder leaves the folder and its files",
     .setup = setup_touch,
     .setup_arg = "@T@/evkeep/",
     .args =
         "eval -m @M@ --ev @EV@ -t 2 --emotions joy --alphas 0 --n-queries 1 -n 5000 -o @T@/evkeep",
     .rc = 1,
     .want = {"lower -n"},
     .absent = {"@T@/evkeep/generations.jsonl", "@T@/evkeep/run-settings.txt"},
     .present = {"@T@/evkeep"}},
    {.name = "--help says a control vector is one direction",
     .args = "generate --help",
     .rc = 0,
     .want = {"(one direction)", "--ev FILE --steer EMOTION=ALPHA"},
     .with_stdout = true},
};

static void run_case(const err_case *c) {
    if (c->setup && !c->setup(c->setup_arg)) return;
    static char err[65536];
    int rc = run(c->args, c->with_stdout, err, sizeof err);
    CHECK(rc == c->rc, "%s: exit %d, want %d:\n%s", c->name, rc, c->rc, err);
    for (int k = 0; k < 4 && c->want[k]; k++) {
        char want[1024];
        expand(c->want[k], want, sizeof want);
        CHECK(strstr(err, want) != NULL, "%s: stderr lacks '%s':\n%s", c->name, want, err);
    }
    for (int k = 0; k < 2 && c->present[k]; k++)
        CHECK(exists(c->present[k]), "%s: %s is gone", c->name, c->present[k]);
    CHECK(!c->unwanted || !strstr(err, c->unwanted), "%s: stderr holds '%s':\n%s", c->name,
          c->unwanted, err);
    for (int k = 0; k < 3 && c->absent[k]; k++)
        CHECK(!exists(c->absent[k]), "%s: %s was left behind", c->name, c->absent[k]);
    printf("ok: %s (exit %d)\n", c->name, rc);
}

/* 4. the docs say what the code does: a file (@S@ = the source tree) holds each `has`
 * and none of `lacks`. */
typedef struct doc_case {
    const char *path;
    const char *has[3];
    const char *lacks;
} doc_case;

static const doc_case docs[] = {
    {"@S@/README.md",
     {"0.187 at 0.5, 0.180 at 1", "`bench [-p 512 -n 128 -r 5]`",
      "2,3,4 for `models/demo-16m.ev.gguf`"},
     "rise monotonically"},
    {"@T@/run/run-settings.txt", {"layers=2,3,4 (recommended by the file)"}, "layers=all"},
    {"@T@/run/results.json", {"\"layers\": \"2,3,4 (recommended by the file)\""}, NULL},
};

static void doc_checks(void) {
    static char out[65536];
    /* --help: the real defaults and layers */
    int rc = run("bench --help", true, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "(default 512)") && strstr(out, "(default 128)"),
          "bench --help defaults:\n%s", out);
    rc = run("eval --help", true, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "models/demo-16m.ev.gguf: 2,3,4") &&
              strstr(out, "2,3,4 (recommended by the file)"),
          "eval --help names the default layers:\n%s", out);
    rc = run("extract --help", true, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "none there: a note, and the run starts fresh"),
          "extract --help on --resume");
    if (!setup_eval_run()) return;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char path[1024], tmpl[1024];
        snprintf(tmpl, sizeof tmpl, "%s", docs[i].path);
        if (!strncmp(tmpl, "@S@", 3))
            snprintf(path, sizeof path, "%s%s", es_test_source(), tmpl + 3);
        else
            expand(tmpl, path, sizeof path);
        char *text = es_test_read_file(path, NULL);
        if (!CHECK(text != NULL, "reading %s", path)) continue;
        for (int k = 0; k < 3 && docs[i].has[k]; k++)
            CHECK(strstr(text, docs[i].has[k]) != NULL, "%s lacks '%s'", path, docs[i].has[k]);
        CHECK(!docs[i].lacks || !strstr(text, docs[i].lacks), "%s still says '%s'", path,
              docs[i].lacks);
        free(text);
    }
}

int main(void) {
    bin = getenv("ES_BIN");
    if (!bin) {
        fprintf(stderr, "ES_BIN is not set\n");
        return 1;
    }
    snprintf(model, sizeof model, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    snprintf(evfile, sizeof evfile, "%s/models/demo-16m.ev.gguf", es_test_source());
    snprintf(tmpdir, sizeof tmpdir, "/tmp/es_errx_%d", (int)getpid());
    if (!CHECK(mkdir(tmpdir, 0755) == 0, "mkdir %s", tmpdir)) return es_test_finish();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
    /* after the cases: setup_edit_log left @T@/run resumed from an unedited log */
    doc_checks();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0, "removing %s", tmpdir);
    return es_test_finish();
}
