/*
 * fuzz_chat.c — the chat-template renderer and detector (src/text/chat.c) on hostile
 * conversations.
 *
 * Input layout:
 *   byte 0      options: bit 0 add_generation_prompt, bits 1-2 thinking (0..3, 3 is out
 *               of range), bits 3-5 pick bos_text/eos_text from a small table (NULL,
 *               "", template-looking text, a long text)
 *   the rest    messages separated by NUL bytes; each message's first byte picks its
 *               role (mostly system/user/assistant; also a bad role, a NULL role, a
 *               NULL content), the rest of the message is its content: any bytes,
 *               invalid UTF-8 and template-looking text included.
 * The whole input (NUL-terminated at its first NUL) is also a template text for
 * es_chat_detect.
 *
 * Each conversation is rendered with es_chat_render and es_chat_render_ex for every
 * es_chat_format, and for ES_CHAT_AUTO and ES_CHAT_FORMAT_COUNT (out of range).
 * Invariants checked (abort on violation):
 *   - ES_OK gives a non-NULL, NUL-terminated text (ASan sees any overread); an error
 *     leaves *out untouched, is one of the documented statuses, and comes with a
 *     message in es_last_error();
 *   - ES_CHAT_UNKNOWN is always ES_ERR_UNSUPPORTED, out-of-range formats and bad
 *     roles/NULL strings always ES_ERR_INVALID_ARG;
 *   - ES_CHAT_NONE gives exactly the contents joined by "\n";
 *   - a format that includes BOS starts with the BOS text in use (Llama 2: when
 *     there is a user message);
 *   - es_chat_render equals es_chat_render_ex with the default options;
 *   - es_chat_detect returns a format in [ES_CHAT_NONE, ES_CHAT_FORMAT_COUNT), whose
 *     name parses back to it (UNKNOWN excepted), and the same format twice.
 * Seeds: the real templates in ../shared/templates, and generated conversations.
 */
#include "emosteer.h"
#include "fuzz_seeds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 64
#define FUZZ_MAX_BYTES 16384 /* real templates are under 10 KB */

static const char *shared_dir(void) {
    const char *env = getenv("ES_SHARED");
    return env && *env ? env : "../shared";
}

static char sentinel_byte;
#define SENTINEL (&sentinel_byte) /* an *out an error must leave alone */

static void fail(const char *what, int fmt) {
    fprintf(stderr, "fuzz_chat: %s (format %d, %s)\n", what, fmt,
            es_chat_format_name((es_chat_format)fmt));
    abort();
}

/* bos_text / eos_text choices: the format's own, empty, template-looking, long */
static const char *const special_texts[] = {
    NULL,
    "",
    "<|im_start|>{{ bos_token }}\xFF",
    "<s>[INST]<<SYS>>{% for m in messages %}</s>",
    "\xE2\x96\x81<|begin_of_text|><|begin_of_text|><|begin_of_text|><|begin_of_text|>",
    NULL,
    "<bos>",
    "\xC3",
};

/* Checks one render call's result. */
static void check_result(int fmt, es_status st, char *out, bool any_bad, const es_chat_msg *msgs,
                         size_t n, const es_chat_options *opt) {
    if (fmt == ES_CHAT_UNKNOWN && st != ES_ERR_UNSUPPORTED) fail("unknown format rendered", fmt);
    if ((fmt < 0 || fmt >= ES_CHAT_FORMAT_COUNT) && st != ES_ERR_INVALID_ARG)
        fail("out-of-range format not refused", fmt);
    if (any_bad && fmt != ES_CHAT_UNKNOWN && st != ES_ERR_INVALID_ARG)
        fail("bad role or NULL string not refused", fmt);
    if (st != ES_OK) {
        if (out != SENTINEL) fail("an error changed *out", fmt);
        if (st != ES_ERR_INVALID_ARG && st != ES_ERR_UNSUPPORTED && st != ES_ERR_NOMEM)
            fail("undocumented status", fmt);
        if (!es_last_error()[0]) fail("an error without a message", fmt);
        return;
    }
    if (!out || out == SENTINEL) fail("ES_OK without output", fmt);
    size_t len = strlen(out); /* ASan: an unterminated text overreads here */
    if (fmt == ES_CHAT_NONE) {
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && (at >= len || out[at++] != '\n')) fail("none: missing separator", fmt);
            size_t k = strlen(msgs[i].content);
            if (at + k > len || memcmp(out + at, msgs[i].content, k) != 0)
                fail("none: content differs", fmt);
            at += k;
        }
        if (at != len) fail("none: extra text", fmt);
    }
    if (es_chat_includes_bos((es_chat_format)fmt)) {
        static const char *const family_bos[ES_CHAT_FORMAT_COUNT] = {
            [ES_CHAT_LLAMA3] = "<|begin_of_text|>",
            [ES_CHAT_LLAMA3_0] = "<|begin_of_text|>",
            [ES_CHAT_GEMMA] = "<bos>",
            [ES_CHAT_MISTRAL] = "<s>",
            [ES_CHAT_LLAMA2] = "<s>",
            [ES_CHAT_MINICPM] = "<s>",
            [ES_CHAT_VICUNA] = "<s>",
        };
        const char *bos = opt->bos_text ? opt->bos_text : family_bos[fmt];
        bool has_user = false;
        for (size_t i = 0; i < n; i++)
            has_user |= !strcmp(msgs[i].role, "user");
        if (!bos) fail("includes BOS but the fuzzer does not know its text", fmt);
        if ((fmt != ES_CHAT_LLAMA2 || has_user) && strncmp(out, bos, strlen(bos)) != 0)
            fail("does not start with BOS", fmt);
    }
}

static void check_detect(const char *text) {
    es_chat_format d = es_chat_detect(text);
    if ((int)d < ES_CHAT_NONE || d >= ES_CHAT_FORMAT_COUNT) fail("detect: out of range", (int)d);
    if (es_chat_detect(text) != d) fail("detect: not deterministic", (int)d);
    if (!es_chat_end_of_turn(d)) fail("detect: NULL end of turn", (int)d);
    if (d != ES_CHAT_UNKNOWN) {
        es_chat_format back = ES_CHAT_UNKNOWN;
        if (es_chat_parse_name(es_chat_format_name(d), &back) != ES_OK || back != d)
            fail("detect: the name does not parse back", (int)d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) {
        check_detect("");
        return 0;
    }
    if (size > FUZZ_MAX_BYTES) size = FUZZ_MAX_BYTES;
    char *text = malloc(size + 1); /* the messages, NUL-terminated in place */
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_detect(text);

    uint8_t flags = data[0];
    es_chat_options opt = es_chat_default_options();
    opt.add_generation_prompt = flags & 1;
    opt.thinking = (es_chat_thinking)((flags >> 1) & 3);
    opt.bos_text = special_texts[(flags >> 3) & 7];
    opt.eos_text = special_texts[((flags >> 3) + 3) & 7];

    es_chat_msg msgs[MAX_MSGS];
    size_t n = 0;
    bool any_bad = false;
    for (size_t i = 1; i < size && n < MAX_MSGS;) {
        uint8_t r = (uint8_t)text[i];
        const char *content = text + i + (r ? 1 : 0);
        const char *role;
        if (r < 0xF0) {
            static const char *const roles[] = {"system", "user", "assistant"};
            role = roles[r % 3];
        } else if (r < 0xF8) {
            static const char *const bad[] = {"System",      "tool", "",      "user ",
                                              "assistant\n", "sys",  "model", "\xFF"};
            role = bad[r & 7];
            any_bad = true;
        } else if (r < 0xFC) {
            role = "user";
            content = NULL;
            any_bad = true;
        } else {
            role = NULL;
            any_bad = true;
        }
        msgs[n].role = role;
        msgs[n].content = content;
        n++;
        i += (r ? 1 : 0) + strlen(text + i + (r ? 1 : 0)) + 1;
    }
    if (opt.thinking > ES_CHAT_THINK_ON) any_bad = true;

    for (int fmt = -1; fmt <= ES_CHAT_FORMAT_COUNT; fmt++) {
        bool bad = any_bad || n == 0;
        char *out = SENTINEL;
        es_status st = es_chat_render_ex((es_chat_format)fmt, msgs, n, &opt, &out);
        check_result(fmt, st, out, bad, msgs, n, &opt);

        char *plain = SENTINEL;
        es_chat_options def = es_chat_default_options();
        def.add_generation_prompt = opt.add_generation_prompt;
        bool bad_plain = n == 0;
        for (size_t i = 0; i < n; i++)
            bad_plain |= !msgs[i].role || !msgs[i].content ||
                         (strcmp(msgs[i].role, "system") && strcmp(msgs[i].role, "user") &&
                          strcmp(msgs[i].role, "assistant"));
        es_status st2 =
            es_chat_render((es_chat_format)fmt, msgs, n, opt.add_generation_prompt, &plain);
        check_result(fmt, st2, plain, bad_plain, msgs, n, &def);
        char *ex = SENTINEL;
        es_status st3 = es_chat_render_ex((es_chat_format)fmt, msgs, n, &def, &ex);
        if (st3 != st2) fail("render and render_ex with default options disagree", fmt);
        if (st2 == ES_OK && strcmp(plain, ex) != 0)
            fail("render and render_ex with default options give different text", fmt);
        if (st == ES_OK) free(out);
        if (st2 == ES_OK) free(plain);
        if (st3 == ES_OK) free(ex);
    }
    free(text);
    return 0;
}

/* ---- seeds ---- */

/* Conversations in the input layout above (flags byte, then NUL-separated messages
 * whose first byte is the role, mod 3: 0 system, 1 user, 2 assistant). */
static const struct {
    const char *bytes;
    size_t len;
} conversations[] = {
#define SEED(s)                                                                                    \
    { s, sizeof s - 1 }
    SEED("\x01"
         "\x03You are terse.\0"
         "\x01Hello <|im_start|>there\0"
         "\x02<think>\nhmm\n</think>\n\nHi!\0"
         "\x01  Again \xFF\xC3(  "),
    SEED("\x02"
         "\x01{{ messages[0]['content'] }}\0"
         "\x02[INST] <<SYS>> </s>\0"
         "\x01<tool_response>x</tool_response>"),
    SEED("\x1B"
         "\x03\0"
         "\x01<start_of_turn>user\n\0"
         "\x02<think>a</think>b</think>c\0"
         "\x01\xE2\x96\x81 \t\n"),
    SEED("\x05"
         "\x03sys\0"
         "\x03second system\0"
         "\x02out of order\0"
         "\xF1role\0"
         "\xF9"),
#undef SEED
};

int es_fuzz_seed_paths(char paths[][4096], int max) {
    static const char *const templates[] = {
        "Qwen-Qwen2.5-7B-Instruct.jinja",
        "Qwen-Qwen3-0.6B.jinja",
        "google-gemma-2-2b-it.jinja",
        "lmsys-vicuna-7b-v1.5.txt",
        "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "microsoft-Phi-3.5-mini-instruct.jinja",
        "mistralai-Mistral-Nemo-Instruct-2407.jinja",
        "openbmb-MiniCPM5-1B.jinja",
    };
    int n = 0;
    for (size_t i = 0; i < sizeof templates / sizeof templates[0] && n < max; i++)
        snprintf(paths[n++], 4096, "%s/templates/%s", shared_dir(), templates[i]);
    for (size_t i = 0; i < sizeof conversations / sizeof conversations[0] && n < max; i++) {
        snprintf(paths[n], 4096, "/tmp/es_fuzz_chat_%zu.bin", i);
        FILE *f = fopen(paths[n], "wb");
        if (!f) continue;
        bool ok =
            fwrite(conversations[i].bytes, 1, conversations[i].len, f) == conversations[i].len;
        if (fclose(f) == 0 && ok) n++;
    }
    return n;
}

const uint8_t *es_fuzz_builtin_seed(size_t *n) {
    static const char seed[] = "\x03"
                               "\x03<|start_header_id|>system<|end_header_id|>\0"
                               "\x01"
                               "Cutting Knowledge Date <|eot_id|>\0"
                               "\x02[/INST]</s><|end|>\0"
                               "\x01<|user|>\n<|assistant|>";
    *n = sizeof seed - 1;
    return (const uint8_t *)seed;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    es_fuzz_prime_corpus(*argc, *argv);
    return 0;
}
