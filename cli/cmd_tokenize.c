/* cmd_tokenize.c — `emosteer tokenize`: show how a model's tokenizer splits a text. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(
        f,
        "usage: emosteer tokenize [-m MODEL] -p TEXT [--ids] [--no-bos] [--parse-special]\n\n"
        "Tokenizes TEXT with the vocabulary of MODEL (any GGUF with tokenizer metadata;\n"
        "the weights are not loaded) and prints one line per token: id -> 'piece'.\n\n"
        "  -m, --model PATH     the GGUF file (default: %s)\n"
        "  -p, --prompt TEXT    the text to tokenize\n"
        "  --ids                print only the ids, as [1, 15043, 3186]\n"
        "  --no-bos             do not add BOS/EOS even if the vocabulary asks for them\n"
        "  --parse-special      turn control tokens written in TEXT (<|im_start|>) into their ids\n"
        "  -h, --help           this help\n",
        cli_default_model());
}

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
    const char *model = NULL, *prompt = NULL;
    bool ids_only = false, add_special = true, parse_special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return ES_EXIT_OK;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-p") ||
                   !strcmp(a, "--prompt")) {
            if (i + 1 >= argc) return cli_usage_error("tokenize", "%s needs a value", a);
            if (a[1] == 'm' || a[2] == 'm')
                model = argv[++i];
            else
                prompt = argv[++i];
        } else if (!strcmp(a, "--ids")) {
            ids_only = true;
        } else if (!strcmp(a, "--no-bos")) {
            add_special = false;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = true;
        } else {
            return cli_usage_error("tokenize", "unknown option '%s'", a);
        }
    }
    if (!prompt) return cli_usage_error("tokenize", "-p TEXT is required");
    if (!model) model = cli_default_model();

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
