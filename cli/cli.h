/*
 * cli.h — the emosteer command-line tool: one file per subcommand (cli/cmd_NAME.c,
 * each defining `int cmd_NAME(int argc, char **argv)`, argv[0] being the subcommand
 * name), dispatched by cli/main.c. Generated text goes to stdout, diagnostics to
 * stderr. Exit codes: 0 success, 1 runtime failure (bad file, model error), 2 usage
 * error (bad flag or value), 3 (generate) generation stopped because the context is full.
 */
#ifndef ES_CLI_H
#define ES_CLI_H

#include "emosteer.h"

#include <stdbool.h>
#include <stdio.h>

#define ES_EXIT_OK 0
#define ES_EXIT_FAIL 1
#define ES_EXIT_USAGE 2
#define ES_EXIT_CTX_FULL                                                                           \
    3 /* generate: stopped because the context is full (the text so far was printed) */

/* The largest |alpha| of --steer and |SCALE| of --control-vector-scaled: past it the
 * steered hidden states swamp the model (overflow to Inf/NaN, or noise). */
#define CLI_MAX_ALPHA 1e3

/* The library keeps its helper macros internal; the CLI's own. */
#ifndef ES_MIN
#define ES_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ES_MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* The default model path: $EMOSTEER_MODEL, else models/demo-16m.q8_0.gguf next to
 * the binary's source tree or installed data dir. Never NULL. */
const char *cli_default_model(void);

/* A data file: installed next to the binary (<prefix>/share/emosteer/REL), else in the
 * source tree (data/REL). Written into buf, which is returned. */
const char *cli_data_path(const char *rel, char *buf, size_t cap);

/* Prints "emosteer: <what>: <es_last_error()>" to stderr and returns ES_EXIT_FAIL. */
int cli_fail(const char *what);
/* Prints "emosteer <cmd>: <message>\nTry 'emosteer <cmd> --help'." and returns ES_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads the text file at `path` (es_file_read, at most 1 GiB) into *text (free()),
 * *len bytes. A file that cannot be read, is not a regular file, or holds a NUL byte
 * ("PATH: NUL byte at offset N: not a text file") is reported on stderr as
 * "emosteer CMD: MESSAGE" and gives ES_EXIT_FAIL; ES_EXIT_OK otherwise. */
int cli_read_text(const char *cmd, const char *path, char **text, size_t *len);

/* Whether `path` can be the file -o writes: not empty, not an existing folder, in a
 * folder that exists. Prints the usage error (suggesting DIR/example for a folder) and
 * returns ES_EXIT_USAGE, else -1. */
int cli_check_output_file(const char *cmd, const char *path, const char *example);

/* Option parsing helpers: parse whole strings, reject junk ("12x"), range-check. */
bool cli_parse_int(const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *s, double lo, double hi, double *out);
/* Parses "1,5,9" into a malloc'ed int32 array; false on junk. */
bool cli_parse_int_list(const char *s, int32_t **out, int *n);

/* Subcommands */
int cmd_info(int argc, char **argv);
int cmd_activations(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_random_model(int argc, char **argv);

#endif
