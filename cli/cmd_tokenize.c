/* cmd_tokenize.c — `emosteer tokenize`: show how a model's tokenizer splits a text. */
#include "cli.h"
#include "opts.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct tok_opts {
    cli_runtime_opts rt; /* only -m */
    const char *prompt;  /* -p */
    bool ids_only, no_bos, parse_special;
} tok_opts;

#define TO(f) offsetof(tok_opts, f)
static const cli_opt tok_own[] = {
    {"-p", "--prompt", "TEXT", CLI_STR, 0, 0, TO(prompt), "the text to tokenize", NULL, NULL, 0, 0},
    {NULL, "--ids", NULL, CLI_FLAG, 0, 0, TO(ids_only), "print only the ids, as [1, 15043, 3186]",
     NULL, NULL, 0, 0},
    {NULL, "--no-bos", NULL, CLI_FLAG, 0, 0, TO(no_bos),
     "do not add BOS/EOS even if the vocabulary asks for them", NULL, NULL, 0, 0},
    {NULL, "--parse-special", NULL, CLI_FLAG, 0, 0, TO(parse_special),
     "turn control tokens written in TEXT (<|im_start|>) into their ids", NULL, NULL, 0, 0},
};
static const cli_opt_group tok_group = {"options", tok_own, sizeof tok_own / sizeof tok_own[0]};

static const cli_group_use tok_groups[] = {
    {&tok_group, 0, 0},
    {&cli_runtime_group, TO(rt), CLI_RT_ALL & ~CLI_RT_MODEL},
};

static void tok_init(void *p) {
    cli_runtime_init(&((tok_opts *)p)->rt);
}

const cli_command cli_tokenize_cmd = {
    "tokenize",
    "[-m MODEL] -p TEXT [--ids] [--no-bos] [--parse-special]",
    "Tokenizes TEXT with the vocabulary of MODEL (any GGUF with tokenizer metadata;\n"
    "the weights are not loaded) and prints one line per token: id -> 'piece'.",
    NULL,
    sizeof(tok_opts),
    tok_init,
    tok_groups,
    sizeof tok_groups / sizeof tok_groups[0],
    0,
};

/* Prints a piece between quotes, escaping what would not show. */
static void print_piece(const char *s, int32_t n) {
    putchar('\'');
    for (int32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\'')
            fputs("\\'", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('\'');
}

int cmd_tokenize(int argc, char **argv) {
    tok_opts o;
    int rc = cli_opts_parse(&cli_tokenize_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    const char *model = o.rt.model, *prompt = o.prompt;
    bool ids_only = o.ids_only, add_special = !o.no_bos, parse_special = o.parse_special;
    if (!prompt) return cli_usage_error("tokenize", "-p TEXT is required");

    es_vocab *v = NULL;
    if (es_vocab_load(model, &v) != ES_OK) return cli_fail("cannot load the vocabulary");
    size_t len = strlen(prompt);
    int32_t cap = 0, n = 0;
    int32_t *ids = NULL;
    es_status st = es_tokenize(v, prompt, len, add_special, parse_special, NULL, 0, &n);
    if (st == ES_ERR_RANGE) { /* first call sized the output */
        cap = n;
        ids = malloc((size_t)cap * sizeof(int32_t));
        if (!ids) {
            es_vocab_free(v);
            fprintf(stderr, "emosteer: out of memory\n");
            return ES_EXIT_FAIL;
        }
        st = es_tokenize(v, prompt, len, add_special, parse_special, ids, cap, &n);
    }
    if (st != ES_OK) {
        free(ids);
        es_vocab_free(v);
        return cli_fail("tokenize");
    }
    if (ids_only) {
        putchar('[');
        for (int32_t i = 0; i < n; i++)
            printf(i ? ", %d" : "%d", ids[i]);
        puts("]");
    } else {
        char small[256];
        for (int32_t i = 0; i < n; i++) {
            int32_t k = es_token_to_piece(v, ids[i], small, sizeof small, true);
            printf("%6d -> ", ids[i]);
            if (k >= 0) {
                print_piece(small, k);
            } else {
                char *big = malloc((size_t)-k);
                if (big) print_piece(big, es_token_to_piece(v, ids[i], big, -k, true));
                free(big);
            }
            putchar('\n');
        }
    }
    free(ids);
    es_vocab_free(v);
    return ES_EXIT_OK;
}
