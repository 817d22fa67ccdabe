/*
 * fuzz_opts.c — fuzzes the CLI's option parser (cli/opts.c) over the option tables of
 * every command: the input's first byte picks a command, the rest is split into argv
 * words at NUL and newline bytes, and cli_parse runs over them (never the command
 * itself). Checks: the parser returns one of its three statuses, an error comes with
 * a message, no two options of a command share a name, and --help prints from the
 * same tables.
 *
 * Seeds: command lines that touch every kind (numbers in and out of range, choices,
 * lists, repeatable and two-word options, missing values).
 */
#include "fuzz_seeds.h"
#include "opts.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 64

/* Aborts if two options a command takes share a name. */
static void check_unique_names(const cli_command *c) {
    for (int g = 0; g < c->n_groups; g++)
        for (int k = 0; k < c->groups[g].group->n_opts; k++) {
            const cli_opt *a = &c->groups[g].group->opts[k];
            if (a->tag & c->groups[g].skip) continue;
            for (int h = g; h < c->n_groups; h++)
                for (int m = h == g ? k + 1 : 0; m < c->groups[h].group->n_opts; m++) {
                    const cli_opt *b = &c->groups[h].group->opts[m];
                    if (b->tag & c->groups[h].skip) continue;
                    if (!strcmp(a->long_name, b->long_name) ||
                        (a->short_name && b->short_name && !strcmp(a->short_name, b->short_name)))
                        abort();
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *devnull;
    static bool checked;
    if (!checked) {
        for (int c = 0; c < cli_n_commands; c++)
            check_unique_names(cli_all_commands[c]);
        devnull = fopen("/dev/null", "w");
        checked = true;
    }
    if (size < 1) return 0;
    const cli_command *cmd = cli_all_commands[data[0] % cli_n_commands];
    char *text = malloc(size); /* the words, NUL-terminated in place */
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char *argv[MAX_WORDS + 1];
    int argc = 0;
    argv[argc++] = (char *)cmd->name;
    for (size_t i = 0; i < size - 1 && argc < MAX_WORDS;) {
        argv[argc++] = text + i;
        while (i < size - 1 && text[i] && text[i] != '\n')
            i++;
        if (i < size - 1) text[i++] = '\0';
    }
    argv[argc] = NULL;
    void *opts = malloc(cmd->opts_size);
    if (opts) {
        cli_parse_result res;
        cli_opts_init(cmd, opts);
        cli_parse_status st = cli_parse(cmd, opts, argc, argv, &res);
        if (st != CLI_PARSE_OK && st != CLI_PARSE_HELP && st != CLI_PARSE_ERROR) abort();
        if (st == CLI_PARSE_ERROR && !res.msg[0]) abort();
        if (memchr(res.msg, '\0', sizeof res.msg) == NULL) abort();
        if (res.n_pos > cmd->max_positional) abort();
        if (st == CLI_PARSE_HELP && devnull) cli_print_help(cmd, opts, devnull);
        cli_opts_free(cmd, opts);
        free(opts);
    }
    free(text);
    return 0;
}

/* ---- seeds: command index byte, then words separated by newlines ---- */

static const char *const seeds[] = {
    "\x01-n\n0\n-t\n512\n--temp\n0.5\n-s\n18446744073709551615\n--stop\nx\n--stop\ny",
    "\x01--kv-type\nf16\n--numerics\nllamacpp\n--chat-template\nchatml\n-sys\nhi\n-n",
    "\x01--control-vector-scaled\na.gguf:2\n--control-vector-scaled\nb.gguf\n-0.5\n--control-"
    "vector-layer-range\n1\n3",
    "\x04--alphas\n-1,0,1\n--compare\na\nb\n--layers\n2-4\n--positions\nlast\n--batch\n1025",
    "\x08--tokens\n1,2,3\n--tokens\n4,,5\n-o\nx.gguf\n--ev\ne.gguf\n--steer\njoy=1\n--help",
    "\x00-m\nm.gguf\nmodel.gguf\nextra",
    "\x03--method\npca\n--hook\nmlp_out\n--scale\n1e7\n--n-queries\n99999999999999999999",
    "\x09--like\ndemo-16m\n--type\nq4_k_m\n--seed\n-1\n-q",
    "\x07-p\n0\n-n\n65536\n-r\n0\n-o\ncsv",
};

/* The seeds as files (the driver and es_fuzz_prime_corpus read files): written to
 * $TMPDIR (else /tmp) under fixed names, so reruns overwrite them. */
int es_fuzz_seed_paths(char paths[][4096], int max) {
    const char *tmp = getenv("TMPDIR");
    int n = 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0] && n < max; i++) {
        snprintf(paths[n], 4096, "%s/es_fuzz_opts_seed_%zu", tmp && *tmp ? tmp : "/tmp", i);
        FILE *f = fopen(paths[n], "wb");
        if (!f) continue;
        size_t len = strlen(seeds[i] + 1) + 1; /* the first byte may be \0 */
        bool ok = fwrite(seeds[i], 1, len, f) == len;
        if (fclose(f) == 0 && ok) n++;
    }
    return n;
}

const uint8_t *es_fuzz_builtin_seed(size_t *n) {
    *n = strlen(seeds[1]);
    return (const uint8_t *)seeds[1];
}

/* libFuzzer: prime an empty corpus folder with the seeds above. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    es_fuzz_prime_corpus(*argc, *argv);
    return 0;
}
