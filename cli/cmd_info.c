/* cmd_info.c — `emosteer info [-m] MODEL`: what a GGUF model is (architecture, sizes,
 * parameters, tensor types, tokenizer, chat template). */
#include "cli.h"
#include "opts.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct info_opts {
    cli_runtime_opts rt; /* only -m */
} info_opts;

static const cli_group_use info_groups[] = {
    {&cli_runtime_group, offsetof(info_opts, rt), CLI_RT_ALL & ~CLI_RT_MODEL},
};

static void info_init(void *p) {
    cli_runtime_init(&((info_opts *)p)->rt);
    ((info_opts *)p)->rt.model = NULL; /* the default only if no MODEL word either */
}

const cli_command cli_info_cmd = {
    "info",
    "[-m] MODEL",
    "Describes a GGUF model: architecture, sizes, parameter count, tensor types\n"
    "(count and bytes per type), tokenizer and special tokens, chat template.\n"
    "MODEL may be given with -m or as the only argument.",
    NULL,
    sizeof(info_opts),
    info_init,
    info_groups,
    1,
    1,
};

static void print_bytes(uint64_t b) {
    if (b >= (1ull << 30))
        printf("%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        printf("%.2f MiB", (double)b / (1ull << 20));
    else
        printf("%.1f KiB", (double)b / 1024.0);
}

static void print_count(uint64_t n) {
    if (n >= 1000000000ull)
        printf("%.2fB", n / 1e9);
    else if (n >= 1000000ull)
        printf("%.2fM", n / 1e6);
    else
        printf("%.1fK", n / 1e3);
    printf(" (%llu)", (unsigned long long)n);
}

/* Tensor type histogram: count and bytes per type. */
static void print_type_histogram(const es_gguf *g) {
    int count[ES_TYPE_COUNT] = {0};
    uint64_t bytes[ES_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < es_gguf_n_tensors(g); i++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(g, i);
        if (t->type >= 0 && t->type < ES_TYPE_COUNT) {
            count[t->type]++;
            bytes[t->type] += t->nbytes;
        }
    }
    printf("tensor types:\n");
    for (int ty = 0; ty < ES_TYPE_COUNT; ty++) {
        if (!count[ty]) continue;
        printf("  %-8s %5d tensors  ", es_type_name(ty), count[ty]);
        print_bytes(bytes[ty]);
        printf("\n");
    }
}

static void print_special(const char *label, int32_t id, const es_vocab *v) {
    if (id < 0) {
        printf(" %s -", label);
        return;
    }
    const char *text = v ? es_vocab_token_text(v, id) : NULL;
    printf(" %s %d", label, (int)id);
    if (text) printf(" (%s)", text);
}

static void print_tokenizer(const es_gguf *g, const es_vocab *v) {
    char *model = es_gguf_get_str_dup(g, "tokenizer.ggml.model");
    char *pre = es_gguf_get_str_dup(g, "tokenizer.ggml.pre");
    if (!model) {
        printf("tokenizer:      none\n");
    } else {
        printf("tokenizer:      %s (pre: %s), %d tokens\n", model, pre ? pre : "-",
               v ? (int)es_vocab_n_tokens(v) : -1);
    }
    free(model);
    free(pre);
    if (!v) return;
    uint32_t pad = 0;
    printf("special tokens:");
    print_special("bos", es_vocab_bos(v), v);
    print_special("eos", es_vocab_eos(v), v);
    print_special("eot", es_vocab_eot(v), v);
    print_special("unk", es_vocab_unk(v), v);
    if (es_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &pad) == ES_OK)
        print_special("pad", (int32_t)pad, v);
    printf("\n");
    printf("adds:           bos %s, eos %s\n", es_vocab_add_bos(v) ? "yes" : "no",
           es_vocab_add_eos(v) ? "yes" : "no");
}

static void print_chat_template(const char *tmpl) {
    if (!tmpl) {
        printf("chat template:  none\n");
        return;
    }
    es_chat_format fmt = es_chat_detect(tmpl);
    printf("chat template:  %zu bytes, format %s\n", strlen(tmpl), es_chat_format_name(fmt));
    if (fmt == ES_CHAT_UNKNOWN) {
        printf("                \"");
        for (int i = 0; i < 80 && tmpl[i]; i++)
            putchar(tmpl[i] == '\n' ? ' ' : tmpl[i]);
        printf("%s\"\n", strlen(tmpl) > 80 ? "..." : "");
    }
}

/* Encoder classifiers: the labels and whether the pooler is there. */
static void print_classifier(es_model *m, const es_model_info *in) {
    es_classifier *c = NULL;
    if (in->n_labels < 1 || es_classifier_create(m, 1, &c) != ES_OK) {
        printf("classifier:     none (an encoder without a cls.output head)\n");
        return;
    }
    printf("classifier:     %d labels:", es_classifier_n_labels(c));
    for (int i = 0; i < es_classifier_n_labels(c); i++)
        printf(" %s", es_classifier_label(c, i));
    printf("\npooler:         %s\n",
           es_classifier_has_pooler(c)
               ? "yes (cls.weight: dense + tanh before cls.output)"
               : "no: its scores lack the trained pooler (cls.weight missing)");
    es_classifier_free(c);
}

int cmd_info(int argc, char **argv) {
    info_opts o;
    cli_parse_result res;
    int rc = cli_opts_parse(&cli_info_cmd, &o, argc, argv, &res);
    if (rc >= 0) return rc;
    const char *path = o.rt.model;
    if (res.n_pos && path)
        return cli_usage_error("info", "more than one model given ('%s')", res.pos[0]);
    if (res.n_pos) path = res.pos[0];
    if (!path) path = cli_default_model();

    es_model *m = NULL;
    if (es_model_load(path, NULL, &m) != ES_OK) return cli_fail("cannot load the model");
    es_gguf *g = NULL;
    if (es_gguf_open(path, &g) != ES_OK) {
        es_model_free(m);
        return cli_fail("cannot read the model file");
    }
    es_model_info in;
    es_model_get_info(m, &in);
    printf("file:           %s\n", path);
    printf("architecture:   %s\n", in.arch);
    printf("specifics:      %s\n", in.features && in.features[0] ? in.features : "-");
    printf("name:           %s\n", in.name[0] ? in.name : "-");
    printf("layers:         %d\n", in.n_layer);
    printf("d_model:        %d\n", in.n_embd);
    printf("heads:          %d query, %d key/value, head dim %d\n", in.n_head, in.n_head_kv,
           in.head_dim);
    printf("ffn:            %d\n", in.n_ff);
    if (in.n_expert > 0)
        printf("experts:        %d, top-%d, each of width %d\n", in.n_expert, in.n_expert_used,
               in.n_ff_exp);
    if (in.kv_lora_rank > 0)
        printf("latent attn:    latent ranks q %d / kv %d, K heads %d (%d RoPE'd, shared), V heads "
               "%d\n",
               in.q_lora_rank, in.kv_lora_rank, in.head_dim, in.n_rot, in.head_dim_v);
    printf("vocab:          %d\n", in.n_vocab);
    printf("context:        %d (trained)\n", in.n_ctx_train);
    printf("parameters:     ");
    print_count(in.n_params);
    printf("\nweights:        ");
    print_bytes(in.weight_bytes);
    printf("\n");
    print_type_histogram(g);
    print_tokenizer(g, es_model_vocab(m));
    if (in.is_encoder)
        print_classifier(m, &in);
    else
        print_chat_template(es_model_chat_template(m));
    es_gguf_close(g);
    es_model_free(m);
    return ES_EXIT_OK;
}
