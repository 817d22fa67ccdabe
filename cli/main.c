/* main.c — `emosteer <command> [options]`: dispatch to cli/cmd_*.c and shared helpers. */
#include "cli.h"
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* score's entry points, declared here: cli.h and opts.h belong to every command */
int cmd_score(int argc, char **argv);
extern const cli_command cli_score_cmd;
/* serve's, in server/serve_main.c */
int cmd_serve(int argc, char **argv);
extern const cli_command cli_serve_cmd;

/* Every command's option table (each in its cli/cmd_NAME.c), in the order of `commands`. */
const cli_command *const cli_all_commands[] = {
    &cli_info_cmd,  &cli_generate_cmd,    &cli_chat_cmd,         &cli_extract_cmd,
    &cli_eval_cmd,  &cli_score_cmd,       &cli_tokenize_cmd,     &cli_perplexity_cmd,
    &cli_bench_cmd, &cli_activations_cmd, &cli_random_model_cmd, &cli_serve_cmd,
};
const int cli_n_commands = sizeof cli_all_commands / sizeof cli_all_commands[0];

#ifndef ES_CLI_NO_MAIN /* the fuzz target links the CLI without its main */
typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

/* The table of subcommands; each lives in cli/cmd_NAME.c. */
static const command commands[] = {
    {"info", cmd_info, "describe a GGUF model: architecture, sizes, tensor types, tokenizer"},
    {"generate", cmd_generate, "continue a prompt (optionally steered), streaming to stdout"},
    {"chat", cmd_chat,
     "interactive multi-turn chat in the model's chat format (optionally steered)"},
    {"extract", cmd_extract, "extract emotion vectors from a model's responses (Dong et al.)"},
    {"eval", cmd_eval,
     "measure how well steering works: emotion, intensity, topic, fluency; HTML report"},
    {"score", cmd_score,
     "emotion probabilities of texts made by any tool (lexicon or --judge), by group"},
    {"tokenize", cmd_tokenize, "show the tokens of a text"},
    {"perplexity", cmd_perplexity, "perplexity of a text file (llama.cpp's method)"},
    {"bench", cmd_bench, "prompt and generation speed, llama-bench style"},
    {"activations", cmd_activations,
     "run tokens through a model and write logits and hook activations"},
    {"serve", cmd_serve,
     "an OpenAI-compatible server where every request carries its own emotions"},
    {"random-model", cmd_random_model, "write a GGUF with random weights at a real model's shape"},
};

static void usage(FILE *f) {
    fprintf(f,
            "emosteer %s — emotion steering for GGUF language models\n\n"
            "usage: emosteer <command> [options]    (emosteer <command> --help for details)\n\n"
            "commands:\n",
            ES_VERSION_STRING);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nThe default model (-m) is %s.\n", cli_default_model());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return ES_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return ES_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("emosteer %s\n", ES_VERSION_STRING);
        return ES_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "emosteer: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return ES_EXIT_USAGE;
}
#endif

/* An installed data file into buf if readable: <dir of the executable>/../share/emosteer/REL
 * (an installed tree, wherever it was moved), else ES_INSTALL_DATA_DIR/REL (the install
 * prefix configured at build time). */
static bool installed_path(const char *rel, char *buf, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, cap, "%.3800s/../share/emosteer/%s", exe, rel);
            if (access(buf, R_OK) == 0) return true;
        }
    }
#ifdef ES_INSTALL_DATA_DIR
    snprintf(buf, cap, "%s/%s", ES_INSTALL_DATA_DIR, rel);
    if (access(buf, R_OK) == 0) return true;
#endif
    return false;
}

const char *cli_default_model(void) {
    const char *env = getenv("EMOSTEER_MODEL");
    if (env && *env) return env;
    static char path[PATH_MAX];
    if (installed_path("models/demo-16m.q8_0.gguf", path, sizeof path)) return path;
    snprintf(path, sizeof path, "%s/demo-16m.q8_0.gguf", ES_DEFAULT_MODEL_DIR);
    return path;
}

const char *cli_data_path(const char *rel, char *buf, size_t cap) {
    if (installed_path(rel, buf, cap)) return buf;
    char raw[PATH_MAX];
    snprintf(raw, sizeof raw, "%s/../data/%s", ES_DEFAULT_MODEL_DIR, rel);
    char *real = realpath(raw, NULL); /* without the "models/.." */
    snprintf(buf, cap, "%s", real ? real : raw);
    free(real);
    return buf;
}

int cli_fail(const char *what) {
    const char *msg = es_last_error();
    fprintf(stderr, "emosteer: %s%s%s\n", what, *msg ? ": " : "", msg);
    return ES_EXIT_FAIL;
}

int cli_read_text(const char *cmd, const char *path, char **text, size_t *len) {
    char *data = NULL;
    size_t n = 0;
    if (es_file_read(path, (size_t)1 << 30, &data, &n) != ES_OK) {
        fprintf(stderr, "emosteer %s: %s\n", cmd, es_last_error());
        return ES_EXIT_FAIL;
    }
    size_t at = strlen(data);
    if (at != n) {
        fprintf(stderr, "emosteer %s: %s: NUL byte at offset %zu: not a text file\n", cmd, path,
                at);
        free(data);
        return ES_EXIT_FAIL;
    }
    *text = data;
    *len = n;
    return ES_EXIT_OK;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "emosteer %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'emosteer %s --help'.\n", cmd);
    return ES_EXIT_USAGE;
}

bool cli_parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_float(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_int_list(const char *s, int32_t **out, int *n) {
    if (!s || !*s) return false;
    int cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    int32_t *v = malloc(sizeof *v * (size_t)cap);
    if (!v) return false;
    int count = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < INT32_MIN || x > INT32_MAX || (*end && *end != ',')) {
            free(v);
            return false;
        }
        v[count++] = (int32_t)x;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) {
            free(v);
            return false;
        }
    }
    *out = v;
    *n = count;
    return true;
}

int cli_check_output_file(const char *cmd, const char *path, const char *example) {
    struct stat sb;
    if (!*path) return cli_usage_error(cmd, "-o '': the output path is empty");
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return cli_usage_error(cmd, "-o %s: is a folder; give the file to write, e.g. %s/%s", path,
                               path, example);
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return cli_usage_error(cmd, "-o %s: the folder %s does not exist", path, dir);
    }
    return -1;
}
