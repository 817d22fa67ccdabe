/*
 * testutil.h — small helpers for the test programs: checks that count failures,
 * the shared data folder, max-difference comparisons that say where.
 *
 * A test program returns es_test_finish(): 0 if every check passed, 1 otherwise,
 * and prints "N passed, N failed" at the end. A test that needs ../shared and does
 * not find it returns ES_TEST_SKIP (77), which ctest reports as skipped — or fails
 * where ES_REQUIRE_SHARED or CI is set.
 */
#ifndef ES_TESTUTIL_H
#define ES_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The exit code of a test that cannot run for missing ../shared data: 77 (ctest:
 * skipped), or 1 (failed, with a note) when ES_REQUIRE_SHARED or CI is set, so that
 * CI never passes a test it did not run. */
int es_test_skip_code(void);
#define ES_TEST_SKIP es_test_skip_code()

extern int es_test_passed;
extern int es_test_failed;

/* Records a check; prints a FAIL line with file:line and the formatted message when
 * cond is false. Returns cond. */
bool es_test_check(bool cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define CHECK(cond, ...) es_test_check((cond), __FILE__, __LINE__, __VA_ARGS__)

/* Prints the totals line and returns the process exit code. */
int es_test_finish(void);

/* Path of the shared data folder ($ES_SHARED, else ../shared), or NULL if absent. */
const char *es_test_shared(void);
/* Joins shared folder and a relative path into a static buffer (NULL if no shared). */
const char *es_test_shared_path(const char *rel);
/* The repository root ($ES_SOURCE, else "."). */
const char *es_test_source(void);

/* Runs the shell command cmd; its standard output (first cap - 1 bytes) goes to out,
 * NUL-terminated (out may be NULL: the output is read and dropped). Returns the exit
 * status, or -1 if the command could not run or was killed. */
int es_test_run_cmd(const char *cmd, char *out, size_t cap);

/* The CLI binary ($ES_BIN) and the embedded demo model and its vectors
 * (models/demo-16m.q8_0.gguf, models/demo-16m.ev.gguf) as absolute paths, for the
 * tests that run the CLI on it. False, with a note printed, when any is missing. */
bool es_test_demo(const char **bin, char *model, size_t model_cap, char *ev, size_t ev_cap);

/* A new folder /tmp/es_test_TAG_PID written into dir; false (a failed check) if it
 * cannot be made. es_test_tmpdir_done removes it when every check passed (it is kept
 * for a look after a failure). */
bool es_test_tmpdir(const char *tag, char *dir, size_t cap);
void es_test_tmpdir_done(const char *dir);

/* Reads a whole file (malloc'ed, NUL-terminated); NULL on failure. */
char *es_test_read_file(const char *path, size_t *len);

/* Max |a-b| over n floats; *where gets the index of the max (may be NULL).
 * NaN anywhere counts as infinite difference. */
double es_test_maxdiff(const float *a, const float *b, size_t n, size_t *where);

#endif
