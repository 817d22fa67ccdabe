/*
 * chat.c — chat templates without Jinja: recognise a model's template by markers and
 * render conversations with our own code, byte for byte what Hugging Face's
 * apply_chat_template produces for system / user / assistant messages.
 *
 * The formats are a table (formats[], like model/arch.c for architectures): per format
 * its name and aliases, the markers that detect it, BOS/EOS, end of turn, the text
 * around each role's turn, a default system prompt and the generation prompt. Formats
 * that are turns only render from the table (render_turns); the few whose templates
 * hold more logic have a render function transcribing it, for messages without tools.
 * Two string functions mirror Python exactly because the templates call them:
 *   - py_strip: str.strip() / Jinja's |trim, which remove Unicode whitespace
 *     (str.isspace: \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680,
 *     U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000);
 *   - nl_lstrip / nl_rstrip: str.lstrip('\n') / str.rstrip('\n').
 */
#include "common.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the output string: base/strbuf.h ---- */

/* A borrowed slice of a message's content. */
typedef struct slice {
    const char *p;
    size_t n;
} slice;

static slice sl(const char *s) {
    return (slice){s, strlen(s)};
}
static void sb_slice(es_strbuf *sb, slice s) {
    es_strbuf_append(sb, s.p, s.n);
}

/* ---- Python string semantics ---- */

/* Decodes the UTF-8 character at s[0..n) into *cp; returns its length, or 0 for an
 * invalid or truncated sequence (such bytes are never whitespace). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static bool py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* str.strip(): removes leading and trailing Unicode whitespace. */
static slice py_strip(slice s) {
    const unsigned char *p = (const unsigned char *)s.p;
    size_t b = 0, e = s.n;
    while (b < e) {
        uint32_t cp;
        size_t k = utf8_decode(p + b, e - b, &cp);
        if (k == 0 || !py_isspace(cp)) break;
        b += k;
    }
    while (e > b) {
        /* step back to the start of the last character */
        size_t st = e - 1;
        while (st > b && (p[st] & 0xC0) == 0x80 && e - st < 4)
            st--;
        uint32_t cp;
        size_t k = utf8_decode(p + st, e - st, &cp);
        if (k != e - st || !py_isspace(cp)) break;
        e = st;
    }
    return (slice){s.p + b, e - b};
}

static slice nl_lstrip(slice s) {
    while (s.n > 0 && s.p[0] == '\n')
        s.p++, s.n--;
    return s;
}

static slice nl_rstrip(slice s) {
    while (s.n > 0 && s.p[s.n - 1] == '\n')
        s.n--;
    return s;
}

/* Position of the first / last occurrence of needle in s, or -1. */
static ptrdiff_t find_first(slice s, const char *needle) {
    size_t m = strlen(needle);
    if (m > s.n) return -1;
    for (size_t i = 0; i + m <= s.n; i++)
        if (memcmp(s.p + i, needle, m) == 0) return (ptrdiff_t)i;
    return -1;
}

static ptrdiff_t find_last(slice s, const char *needle) {
    size_t m = strlen(needle);
    if (m > s.n) return -1;
    for (size_t i = s.n - m + 1; i-- > 0;)
        if (memcmp(s.p + i, needle, m) == 0) return (ptrdiff_t)i;
    return -1;
}

static bool starts_with(slice s, const char *pre) {
    size_t m = strlen(pre);
    return s.n >= m && memcmp(s.p, pre, m) == 0;
}

static bool ends_with(slice s, const char *suf) {
    size_t m = strlen(suf);
    return s.n >= m && memcmp(s.p + s.n - m, suf, m) == 0;
}

/* ---- the formats, as data ---- */

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

struct chat_format;

/* What every renderer gets: the messages with parsed roles. */
typedef struct conv {
    const struct chat_format *f; /* the format's record */
    const es_chat_msg *msgs;     /* [n] */
    const enum role *role;       /* [n] */
    size_t n;
    const es_chat_options *opt;
    const char *bos; /* BOS text: the options' or the format's */
    const char *eos; /* EOS text: the options' or the format's */
} conv;

typedef es_status (*render_fn)(const conv *c, es_strbuf *sb);

/* One chat format. Rendering without a render function (render_turns):
 *   [bos if includes_bos]
 *   [a system turn of default_system, when one is set and messages[0] is not system]
 *   for each message: prefix[role] + [system_preamble, first system turn only]
 *                     + content (str.strip()ped if strip) + suffix[role]
 *   generation_prompt if add_generation_prompt, else [eos if eos_without_prompt]
 * Formats whose templates do more (alternation checks, merged system messages,
 * <think> blocks) have a render function, which reads the same record. */
typedef struct chat_format {
    es_chat_format fmt;
    const char *name;       /* canonical name (es_chat_format_name) */
    const char *aliases[2]; /* other names es_chat_parse_name accepts, or NULL */
    /* detection: every `all` marker appears in the template, one of `any` too when
     * given, and no `none` marker does (NULL: no such condition) */
    const char *all[5];
    const char *any[2];
    const char *none[3];
    bool includes_bos;             /* the rendering starts with BOS (es_chat_includes_bos) */
    const char *bos;               /* the family's usual BOS text */
    const char *eos;               /* the family's usual EOS text */
    const char *end_of_turn;       /* closes an assistant turn (es_chat_end_of_turn) */
    const char *prefix[3];         /* [role] opens a turn */
    const char *suffix[3];         /* [role] closes a turn */
    bool strip;                    /* contents are str.strip()ped */
    const char *default_system;    /* a system turn always comes first, with this text when
                                      the messages have none; NULL = no such turn */
    const char *system_preamble;   /* text before the first system turn's content, or NULL */
    const char *generation_prompt; /* opens the assistant turn when add_generation_prompt */
    bool skip_empty_system;        /* system messages with empty content render nothing */
    bool eos_without_prompt;       /* without a generation prompt the text ends with EOS */
    render_fn render;              /* NULL: render_turns */
} chat_format;

static es_status render_none(const conv *c, es_strbuf *sb);
static es_status render_qwen3(const conv *c, es_strbuf *sb);
static es_status render_minicpm(const conv *c, es_strbuf *sb);
static es_status render_gemma(const conv *c, es_strbuf *sb);
static es_status render_mistral(const conv *c, es_strbuf *sb);
static es_status render_llama2(const conv *c, es_strbuf *sb);
static es_status render_minicpm3(const conv *c, es_strbuf *sb);

#define LLAMA3_HEADER(role) "<|start_header_id|>" role "<|end_header_id|>\n\n"
#define CHATML_TURN(role) "<|im_start|>" role "\n"
#define QWEN_SYSTEM "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

/* In detection order: es_chat_detect takes the first record whose markers match; the
 * "unknown" record catches the ChatML templates the ones above it do not reproduce
 * (QwQ-style <think> handling, other default systems). "none" is never detected from
 * markers: it is the blank template. */
static const chat_format formats[] = {
    {
        .fmt = ES_CHAT_LLAMA3,
        .name = "llama3",
        .aliases = {"llama3.1"},
        .all = {"<|start_header_id|>", "<|eot_id|>", "Cutting Knowledge Date"},
        .includes_bos = true,
        .bos = "<|begin_of_text|>",
        .eos = "<|eot_id|>",
        .end_of_turn = "<|eot_id|>",
        .prefix = {LLAMA3_HEADER("system"), LLAMA3_HEADER("user"), LLAMA3_HEADER("assistant")},
        .suffix = {"<|eot_id|>", "<|eot_id|>", "<|eot_id|>"},
        .strip = true,
        .default_system = "",
        .system_preamble = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n",
        .generation_prompt = LLAMA3_HEADER("assistant"),
    },
    {
        .fmt = ES_CHAT_LLAMA3_0,
        .name = "llama3.0",
        .all = {"<|start_header_id|>", "<|eot_id|>"},
        .none = {"Cutting Knowledge Date"},
        .includes_bos = true,
        .bos = "<|begin_of_text|>",
        .eos = "<|eot_id|>",
        .end_of_turn = "<|eot_id|>",
        .prefix = {LLAMA3_HEADER("system"), LLAMA3_HEADER("user"), LLAMA3_HEADER("assistant")},
        .suffix = {"<|eot_id|>", "<|eot_id|>", "<|eot_id|>"},
        .strip = true,
        .generation_prompt = LLAMA3_HEADER("assistant"),
    },
    {
        /* the Qwen 3 logic (reasoning split off assistant turns before the last query)
         * with a BOS */
        .fmt = ES_CHAT_MINICPM,
        .name = "minicpm",
        .all = {"<|im_start|>", "<think>", "reasoning_content", "last_query_index", "bos_token"},
        .includes_bos = true,
        .bos = "<s>",
        .eos = "<|im_end|>",
        .end_of_turn = "<|im_end|>",
        .prefix = {CHATML_TURN("system"), CHATML_TURN("user"), CHATML_TURN("assistant")},
        .suffix = {"<|im_end|>\n", "<|im_end|>\n", "<|im_end|>\n"},
        .generation_prompt = CHATML_TURN("assistant"),
        .render = render_minicpm,
    },
    {
        .fmt = ES_CHAT_QWEN3,
        .name = "qwen3",
        .all = {"<|im_start|>", "<think>", "reasoning_content", "last_query_index"},
        .none = {"bos_token"},
        .eos = "<|im_end|>",
        .end_of_turn = "<|im_end|>",
        .prefix = {CHATML_TURN("system"), CHATML_TURN("user"), CHATML_TURN("assistant")},
        .suffix = {"<|im_end|>\n", "<|im_end|>\n", "<|im_end|>\n"},
        .generation_prompt = CHATML_TURN("assistant"),
        .render = render_qwen3,
    },
    {
        /* Qwen 2.5 */
        .fmt = ES_CHAT_CHATML,
        .name = "chatml",
        .aliases = {"qwen2.5"},
        .all = {"<|im_start|>", QWEN_SYSTEM},
        .none = {"<think>"},
        .eos = "<|im_end|>",
        .end_of_turn = "<|im_end|>",
        .prefix = {CHATML_TURN("system"), CHATML_TURN("user"), CHATML_TURN("assistant")},
        .suffix = {"<|im_end|>\n", "<|im_end|>\n", "<|im_end|>\n"},
        .default_system = QWEN_SYSTEM,
        .generation_prompt = CHATML_TURN("assistant"),
    },
    {
        /* Qwen-7B-Chat (v1): no chat_template in its tokenizer_config.json; the format is
         * make_context(chat_format="chatml") of Qwen/Qwen-7B-Chat qwen_generation_utils.py:
         * "<|im_start|>system\n{system}<|im_end|>" then "\n<|im_start|>user\n{q}<|im_end|>
         * \n<|im_start|>assistant\n{a}<|im_end|>" per turn, default system "You are a helpful
         * assistant." — ChatML turns joined by "\n" (also the Qwen 1.5 template's text) */
        .fmt = ES_CHAT_QWEN,
        .name = "qwen",
        .aliases = {"qwen-7b-chat"},
        .all = {"<|im_start|>", "You are a helpful assistant."},
        .none = {"<think>"},
        .eos = "<|endoftext|>",
        .end_of_turn = "<|im_end|>",
        .prefix = {CHATML_TURN("system"), CHATML_TURN("user"), CHATML_TURN("assistant")},
        .suffix = {"<|im_end|>\n", "<|im_end|>\n", "<|im_end|>\n"},
        .default_system = "You are a helpful assistant.",
        .generation_prompt = CHATML_TURN("assistant"),
    },
    {
        /* MiniCPM3-4B: the chat_template of openbmb/MiniCPM3-4B tokenizer_config.json as
         * quoted in ShishirPatil/gorilla berkeley-function-call-leaderboard/bfcl_eval/
         * model_handler/local_inference/minicpm_fc.py (commit 05c26547, MiniCPMFCHandler
         * docstring). Without tools: "<|im_start|>system\n" + system + "<|im_end|>\n" only
         * when messages[0] is a system message with non-empty content ("if system_message
         * or tools"); then every other message "<|im_start|>" role "\n" content
         * "<|im_end|>\n" (a later system message is an ordinary turn, even when empty);
         * "<|im_start|>assistant\n" with add_generation_prompt. No default system, no
         * bos_token in the text (the tokenizer's add_bos_token decides). The <|thought_start|>
         * and tool-call branches need message fields we do not have. The first MiniCPM3
         * template (plain ChatML loop) is detected as "yi", which renders it exactly. */
        .fmt = ES_CHAT_MINICPM3,
        .name = "minicpm3",
        .all = {"<|im_start|>", "<|thought_start|>", "<|tool_call_start|>", "system_message"},
        .bos = "<s>",
        .eos = "<|im_end|>",
        .end_of_turn = "<|im_end|>",
        .prefix = {CHATML_TURN("system"), CHATML_TURN("user"), CHATML_TURN("assistant")},
        .suffix = {"<|im_end|>\n", "<|im_end|>\n", "<|im_end|>\n"},
        .generation_prompt = CHATML_TURN("assistant"),
        .render = render_minicpm3,
    },
    {
        /* Yi-6B-Chat / Yi-34B-Chat: the generic ChatML loop, as in 01-ai/Yi-34B-Chat
         * tokenizer_config.json (quoted by xusenlin/api-for-open-llm YiAITemplate, which
         * cites https://huggingface.co/01-ai/Yi-34B-Chat/blob/main/tokenizer_config.json):
         *   {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' +
         *   message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if
         *   add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
         * No default system (01-ai/Yi issue #197: a user-only conversation gives
         * "<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n"). Detected from that
         * loop when the template names no system, bos_token or eos_token (those that do
         * add text of their own); any such template renders exactly as this record. */
        .fmt = ES_CHAT_YI,
        .name = "yi",
        .aliases = {"yi-chat"},
        .all = {"<|im_start|>", "' + message['role'] + '", "message['content'] + '<|im_end|>'",
                "add_generation_prompt"},
        .none = {"system", "bos_token", "eos_token"},
        .bos = "<|startoftext|>",
        .eos = "<|im_end|>",
        .end_of_turn = "<|im_end|>",
        .prefix = {CHATML_TURN("system"), CHATML_TURN("user"), CHATML_TURN("assistant")},
        .suffix = {"<|im_end|>\n", "<|im_end|>\n", "<|im_end|>\n"},
        .generation_prompt = CHATML_TURN("assistant"),
    },
    {
        .fmt = ES_CHAT_UNKNOWN,
        .name = "unknown",
        .all = {"<|im_start|>"},
        .end_of_turn = "",
    },
    {
        /* Gemma 3 (and 1/2 without a system message) */
        .fmt = ES_CHAT_GEMMA,
        .name = "gemma",
        .aliases = {"gemma2", "gemma3"},
        .all = {"<start_of_turn>"},
        .includes_bos = true,
        .bos = "<bos>",
        .eos = "<eos>",
        .end_of_turn = "<end_of_turn>",
        .prefix = {"<start_of_turn>system\n", "<start_of_turn>user\n", "<start_of_turn>model\n"},
        .suffix = {"<end_of_turn>\n", "<end_of_turn>\n", "<end_of_turn>\n"},
        .strip = true,
        .generation_prompt = "<start_of_turn>model\n",
        .render = render_gemma,
    },
    {
        /* Phi 3.5: a system role and an explicit generation prompt (the first Phi-3
         * template opened the assistant turn after every user message and dropped the
         * system) */
        .fmt = ES_CHAT_PHI3,
        .name = "phi3",
        .aliases = {"phi3.5"},
        .all = {"<|assistant|>", "<|end|>", "<|system|>", "add_generation_prompt"},
        .any = {"<|user|>\n", "<|user|>\\n"},
        .bos = "<s>",
        .eos = "<|endoftext|>",
        .end_of_turn = "<|end|>",
        .prefix = {"<|system|>\n", "<|user|>\n", "<|assistant|>\n"},
        .suffix = {"<|end|>\n", "<|end|>\n", "<|end|>\n"},
        .generation_prompt = "<|assistant|>\n",
        .skip_empty_system = true,
        .eos_without_prompt = true,
    },
    {
        .fmt = ES_CHAT_LLAMA2,
        .name = "llama2",
        .all = {"[INST]", "<<SYS>>"},
        .includes_bos = true,
        .bos = "<s>",
        .eos = "</s>",
        .end_of_turn = "</s>",
        .prefix = {"", "[INST] ", " "},
        .suffix = {"", " [/INST]", " "},
        .strip = true,
        .render = render_llama2,
    },
    {
        /* Mistral Nemo / v3-tekken: "[INST]" joined without spaces ("[INST] " with a
         * space is Mistral v1-v3, which we do not reproduce) */
        .fmt = ES_CHAT_MISTRAL,
        .name = "mistral",
        .aliases = {"mistral-nemo"},
        .all = {"[INST]"},
        .any = {"\"[INST]\" +", "'[INST]' +"},
        .none = {"<<SYS>>"},
        .includes_bos = true,
        .bos = "<s>",
        .eos = "</s>",
        .end_of_turn = "</s>",
        .prefix = {"", "[INST]", ""},
        .suffix = {"", "[/INST]", ""},
        .render = render_mistral,
    },
    {
        /* Vicuna v1.1 (lmsys/vicuna-7b-v1.5 has no chat_template): FastChat's "vicuna_v1.1"
         * conversation, SeparatorStyle.ADD_COLON_TWO with sep " " and sep2 "</s>"
         * (lm-sys/FastChat fastchat/conversation.py at 0e6d3e4b, lines 771-781 and 90-101;
         * ../shared/templates/lmsys-vicuna-7b-v1.5.txt); the tokenizer adds the BOS */
        .fmt = ES_CHAT_VICUNA,
        .name = "vicuna",
        .aliases = {"vicuna_v1.1"},
        .all = {"USER: ", "ASSISTANT:"},
        .includes_bos = true,
        .bos = "<s>",
        .eos = "</s>",
        .end_of_turn = "</s>",
        .prefix = {"", "USER: ", "ASSISTANT: "},
        .suffix = {" ", " ", "</s>"},
        .default_system =
            "A chat between a curious user and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the user's questions.",
        .generation_prompt = "ASSISTANT:",
    },
    {
        /* Baichuan 2 chat (no chat_template): build_chat_input of baichuan-inc/Baichuan2-13B-Chat
         * generation_utils.py (commit 99fe8c0f): the system text, then per message
         * user_token_id 195 (<reserved_106>) or assistant_token_id 196 (<reserved_107>)
         * followed by its content, and 196 again when the last message is not the
         * assistant's; no BOS (add_bos_token false) and no separators */
        .fmt = ES_CHAT_BAICHUAN2,
        .name = "baichuan2",
        .all = {"<reserved_106>", "<reserved_107>"},
        .eos = "</s>",
        .end_of_turn = "</s>",
        .prefix = {"", "<reserved_106>", "<reserved_107>"},
        .suffix = {"", "", ""},
        .generation_prompt = "<reserved_107>",
    },
    {
        .fmt = ES_CHAT_NONE,
        .name = "none",
        .end_of_turn = "",
        .render = render_none,
    },
};

static const chat_format *format_of(es_chat_format fmt) {
    for (size_t i = 0; i < ES_ARRAY_LEN(formats); i++)
        if (formats[i].fmt == fmt) return &formats[i];
    return NULL;
}

/* ---- names, detection ---- */

const char *es_chat_format_name(es_chat_format fmt) {
    const chat_format *f = format_of(fmt);
    return f ? f->name : "unknown";
}

es_status es_chat_parse_name(const char *name, es_chat_format *out) {
    if (!name || !out) return es_error(ES_ERR_INVALID_ARG, "chat: NULL template name");
    for (size_t i = 0; i < ES_ARRAY_LEN(formats); i++) {
        const chat_format *f = &formats[i];
        if (f->fmt == ES_CHAT_UNKNOWN) continue;
        bool match = strcmp(name, f->name) == 0;
        for (size_t a = 0; a < ES_ARRAY_LEN(f->aliases) && f->aliases[a]; a++)
            match |= strcmp(name, f->aliases[a]) == 0;
        if (match) {
            *out = f->fmt;
            return ES_OK;
        }
    }
    /* the names in the order of es_chat_format */
    char list[256] = "";
    for (int fmt = 0; fmt < ES_CHAT_FORMAT_COUNT; fmt++) {
        if (fmt == ES_CHAT_UNKNOWN) continue;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", es_chat_format_name(fmt));
    }
    return es_error(ES_ERR_INVALID_ARG, "chat: unknown template name '%s' (%s)", name, list);
}

static bool has(const char *t, const char *marker) {
    return strstr(t, marker) != NULL;
}

/* Whether the template text t matches f's detection markers. */
static bool markers_match(const chat_format *f, const char *t) {
    if (!f->all[0] && !f->any[0]) return false; /* not detected from markers */
    for (size_t i = 0; i < ES_ARRAY_LEN(f->all) && f->all[i]; i++)
        if (!has(t, f->all[i])) return false;
    if (f->any[0]) {
        bool one = false;
        for (size_t i = 0; i < ES_ARRAY_LEN(f->any) && f->any[i]; i++)
            one |= has(t, f->any[i]);
        if (!one) return false;
    }
    for (size_t i = 0; i < ES_ARRAY_LEN(f->none) && f->none[i]; i++)
        if (has(t, f->none[i])) return false;
    return true;
}

es_chat_format es_chat_detect(const char *t) {
    if (!t) return ES_CHAT_NONE;
    slice all = py_strip(sl(t));
    if (all.n == 0) return ES_CHAT_NONE;
    for (size_t i = 0; i < ES_ARRAY_LEN(formats); i++)
        if (markers_match(&formats[i], t)) return formats[i].fmt;
    return ES_CHAT_UNKNOWN;
}

bool es_chat_includes_bos(es_chat_format fmt) {
    const chat_format *f = format_of(fmt);
    return f && f->includes_bos;
}

const char *es_chat_end_of_turn(es_chat_format fmt) {
    const chat_format *f = format_of(fmt);
    return f ? f->end_of_turn : "";
}

es_chat_options es_chat_default_options(void) {
    es_chat_options o = {
        .add_generation_prompt = true,
        .thinking = ES_CHAT_THINK_DEFAULT,
        .bos_text = NULL,
        .eos_text = NULL,
    };
    return o;
}

/* ---- rendering ---- */

static slice content(const conv *c, size_t i) {
    return sl(c->msgs[i].content);
}

/* The content as the format writes it: str.strip()ped if the template trims. */
static slice text_of(const conv *c, slice text) {
    return c->f->strip ? py_strip(text) : text;
}

/* prefix[r] + text + suffix[r], the text as the format writes it. */
static void turn(const conv *c, es_strbuf *sb, enum role r, slice text) {
    es_strbuf_puts(sb, c->f->prefix[r]);
    sb_slice(sb, text_of(c, text));
    es_strbuf_puts(sb, c->f->suffix[r]);
}

static void generation_prompt(const conv *c, es_strbuf *sb) {
    if (c->opt->add_generation_prompt) es_strbuf_puts(sb, c->f->generation_prompt);
}

/* Gemma, Mistral and Llama 2: after an optional first system message, roles must
 * alternate user/assistant/... — the templates' "(role == 'user') != (i % 2 == 0)". */
static es_status check_alternation(const conv *c, size_t first) {
    for (size_t i = first; i < c->n; i++) {
        bool even = ((i - first) % 2) == 0;
        if ((c->role[i] == ROLE_USER) != even)
            return es_error(ES_ERR_INVALID_ARG,
                            "chat: %s: message %zu has role '%s'; after an optional first system "
                            "message roles must alternate user/assistant/user/...",
                            c->f->name, i, c->msgs[i].role);
    }
    return ES_OK;
}

/* The formats that are turns only (Llama 3.1, Llama 3.0, Qwen 2.5, Phi 3.5): see
 * chat_format. */
static es_status render_turns(const conv *c, es_strbuf *sb) {
    const chat_format *f = c->f;
    if (f->includes_bos) es_strbuf_puts(sb, c->bos);
    bool preamble = f->system_preamble != NULL; /* still to be written */
    if (c->role[0] != ROLE_SYSTEM && f->default_system) {
        es_strbuf_puts(sb, f->prefix[ROLE_SYSTEM]);
        if (preamble) es_strbuf_puts(sb, f->system_preamble);
        preamble = false;
        sb_slice(sb, text_of(c, sl(f->default_system)));
        es_strbuf_puts(sb, f->suffix[ROLE_SYSTEM]);
    }
    for (size_t i = 0; i < c->n; i++) {
        slice text = content(c, i);
        if (c->role[i] == ROLE_SYSTEM && f->skip_empty_system && text.n == 0) continue;
        es_strbuf_puts(sb, f->prefix[c->role[i]]);
        if (i == 0 && c->role[i] == ROLE_SYSTEM && preamble) es_strbuf_puts(sb, f->system_preamble);
        sb_slice(sb, text_of(c, text));
        es_strbuf_puts(sb, f->suffix[c->role[i]]);
    }
    if (c->opt->add_generation_prompt)
        es_strbuf_puts(sb, f->generation_prompt);
    else if (f->eos_without_prompt)
        es_strbuf_puts(sb, c->eos);
    return ES_OK;
}

/* Qwen 3 / MiniCPM: the index of the last user message that is not a tool response
 * (ns.last_query_index), or n-1 when there is none. */
static size_t last_query_index(const conv *c) {
    for (size_t k = c->n; k-- > 0;) {
        if (c->role[k] != ROLE_USER) continue;
        slice t = content(c, k);
        if (starts_with(t, "<tool_response>") && ends_with(t, "</tool_response>")) continue;
        return k;
    }
    return c->n - 1;
}

/* Splits an assistant content into reasoning and answer as the Qwen 3 / MiniCPM
 * templates do when it contains "</think>":
 *   answer    = content.split('</think>')[-1].lstrip('\n')
 *   reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
static void split_think(slice text, slice *reasoning, slice *answer) {
    *reasoning = (slice){text.p, 0};
    *answer = text;
    ptrdiff_t first_close = find_first(text, "</think>");
    if (first_close < 0) return;
    ptrdiff_t last_close = find_last(text, "</think>");
    size_t after = (size_t)last_close + strlen("</think>");
    *answer = nl_lstrip((slice){text.p + after, text.n - after});
    slice before = nl_rstrip((slice){text.p, (size_t)first_close});
    ptrdiff_t open = find_last(before, "<think>");
    if (open >= 0) {
        size_t from = (size_t)open + strlen("<think>");
        before = (slice){before.p + from, before.n - from};
    }
    *reasoning = nl_lstrip(before);
}

/* Qwen 3 (minicpm = false) and MiniCPM 5 (minicpm = true). They differ in the BOS,
 * in whether the final assistant turn always gets a (possibly empty) think block, and
 * in what enable_thinking=true adds to the generation prompt. */
static es_status render_qwen3_like(const conv *c, es_strbuf *sb, bool minicpm) {
    if (c->f->includes_bos) es_strbuf_puts(sb, c->bos);
    if (c->role[0] == ROLE_SYSTEM) turn(c, sb, ROLE_SYSTEM, content(c, 0));
    size_t last_query = last_query_index(c);
    for (size_t i = 0; i < c->n; i++) {
        if (c->role[i] == ROLE_USER || (c->role[i] == ROLE_SYSTEM && i > 0)) {
            turn(c, sb, c->role[i], content(c, i));
        } else if (c->role[i] == ROLE_ASSISTANT) {
            slice reasoning, answer;
            split_think(content(c, i), &reasoning, &answer);
            bool last = i == c->n - 1;
            bool think_block =
                i > last_query && (minicpm ? reasoning.n > 0 : (last || reasoning.n > 0));
            es_strbuf_puts(sb, c->f->prefix[ROLE_ASSISTANT]);
            if (think_block) {
                es_strbuf_puts(sb, "<think>\n");
                sb_slice(sb, nl_lstrip(nl_rstrip(reasoning)));
                es_strbuf_puts(sb, "\n</think>\n\n");
                sb_slice(sb, nl_lstrip(answer));
            } else {
                sb_slice(sb, answer);
            }
            es_strbuf_puts(sb, c->f->suffix[ROLE_ASSISTANT]);
        }
    }
    if (c->opt->add_generation_prompt) {
        es_strbuf_puts(sb, c->f->generation_prompt);
        if (c->opt->thinking == ES_CHAT_THINK_OFF) es_strbuf_puts(sb, "<think>\n\n</think>\n\n");
        if (minicpm && c->opt->thinking == ES_CHAT_THINK_ON) es_strbuf_puts(sb, "<think>\n");
    }
    return ES_OK;
}

static es_status render_qwen3(const conv *c, es_strbuf *sb) {
    return render_qwen3_like(c, sb, false);
}

static es_status render_minicpm(const conv *c, es_strbuf *sb) {
    return render_qwen3_like(c, sb, true);
}

/* MiniCPM3: a first system message only when non-empty, then ChatML turns. */
static es_status render_minicpm3(const conv *c, es_strbuf *sb) {
    size_t first = 0;
    if (c->n > 0 && c->role[0] == ROLE_SYSTEM) {
        first = 1;
        if (content(c, 0).n > 0) turn(c, sb, ROLE_SYSTEM, content(c, 0));
    }
    for (size_t i = first; i < c->n; i++)
        turn(c, sb, c->role[i], content(c, i));
    generation_prompt(c, sb);
    return ES_OK;
}

/* Gemma: the system message opens the first turn's content, followed by "\n\n". */
static es_status render_gemma(const conv *c, es_strbuf *sb) {
    size_t first = c->role[0] == ROLE_SYSTEM ? 1 : 0;
    es_status st = check_alternation(c, first);
    if (st != ES_OK) return st;
    es_strbuf_puts(sb, c->bos);
    for (size_t i = first; i < c->n; i++) {
        es_strbuf_puts(sb, c->f->prefix[c->role[i]]);
        if (i == first && first == 1) {
            sb_slice(sb, content(c, 0));
            es_strbuf_puts(sb, "\n\n");
        }
        sb_slice(sb, text_of(c, content(c, i)));
        es_strbuf_puts(sb, c->f->suffix[c->role[i]]);
    }
    generation_prompt(c, sb);
    return ES_OK;
}

/* Mistral Nemo: the system message goes in front of the last message when that is a
 * user message (and is dropped otherwise, as the template does); assistant turns end
 * with EOS. */
static es_status render_mistral(const conv *c, es_strbuf *sb) {
    size_t first = c->role[0] == ROLE_SYSTEM ? 1 : 0;
    es_status st = check_alternation(c, first);
    if (st != ES_OK) return st;
    /* alternation leaves a later system message only at odd places; the template
     * refuses those with "Only user and assistant roles are supported" */
    for (size_t i = first; i < c->n; i++)
        if (c->role[i] == ROLE_SYSTEM)
            return es_error(ES_ERR_INVALID_ARG,
                            "chat: mistral: message %zu: only the first message may be a system "
                            "message",
                            i);
    es_strbuf_puts(sb, c->bos);
    for (size_t i = first; i < c->n; i++) {
        es_strbuf_puts(sb, c->f->prefix[c->role[i]]);
        if (c->role[i] == ROLE_USER && i == c->n - 1 && first == 1) {
            sb_slice(sb, content(c, 0));
            es_strbuf_puts(sb, "\n\n");
        }
        sb_slice(sb, content(c, i));
        es_strbuf_puts(sb, c->f->suffix[c->role[i]]);
        if (c->role[i] == ROLE_ASSISTANT) es_strbuf_puts(sb, c->eos);
    }
    return ES_OK;
}

/* Llama 2 chat: BOS before every [INST]; the system block opens the first user turn;
 * a later system message (possible at odd places) renders nothing, as in the template;
 * assistant turns end with EOS. */
static es_status render_llama2(const conv *c, es_strbuf *sb) {
    size_t first = c->role[0] == ROLE_SYSTEM ? 1 : 0;
    es_status st = check_alternation(c, first);
    if (st != ES_OK) return st;
    es_strbuf tmp = {0};
    for (size_t i = first; i < c->n; i++) {
        slice text = content(c, i);
        if (i == first && first == 1) {
            /* content = '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content, then .strip() */
            tmp.len = 0;
            es_strbuf_puts(&tmp, "<<SYS>>\n");
            sb_slice(&tmp, content(c, 0));
            es_strbuf_puts(&tmp, "\n<</SYS>>\n\n");
            sb_slice(&tmp, text);
            if (tmp.failed) break;
            text = (slice){tmp.data, tmp.len};
        }
        if (c->role[i] == ROLE_SYSTEM) continue;
        if (c->role[i] == ROLE_USER) es_strbuf_puts(sb, c->bos);
        turn(c, sb, c->role[i], text);
        if (c->role[i] == ROLE_ASSISTANT) es_strbuf_puts(sb, c->eos);
    }
    if (tmp.failed) sb->failed = true;
    free(tmp.data);
    return ES_OK;
}

/* No template: the contents joined by "\n". */
static es_status render_none(const conv *c, es_strbuf *sb) {
    for (size_t i = 0; i < c->n; i++) {
        if (i > 0) es_strbuf_puts(sb, "\n");
        sb_slice(sb, content(c, i));
    }
    return ES_OK;
}

es_status es_chat_render_ex(es_chat_format fmt, const es_chat_msg *msgs, size_t n,
                            const es_chat_options *opt, char **out) {
    if (!out) return es_error(ES_ERR_INVALID_ARG, "chat: NULL output pointer");
    if (!opt) return es_error(ES_ERR_INVALID_ARG, "chat: NULL options");
    const chat_format *f = format_of(fmt);
    if (!f) return es_error(ES_ERR_INVALID_ARG, "chat: format %d is out of range", (int)fmt);
    if (fmt == ES_CHAT_UNKNOWN)
        return es_error(ES_ERR_UNSUPPORTED,
                        "chat: the model's chat template is not one we reproduce; choose a format "
                        "by name (e.g. chatml, llama3) or 'none' for plain text");
    if (n == 0 || !msgs) return es_error(ES_ERR_INVALID_ARG, "chat: no messages to render");
    if ((int)opt->thinking < ES_CHAT_THINK_DEFAULT || opt->thinking > ES_CHAT_THINK_ON)
        return es_error(ES_ERR_INVALID_ARG, "chat: thinking option %d is out of range",
                        (int)opt->thinking);

    size_t bytes;
    if (!es_mul_size(n, sizeof(enum role), &bytes))
        return es_error(ES_ERR_NOMEM, "chat: %zu messages is too many", n);
    enum role *role = malloc(bytes);
    if (!role) return es_error(ES_ERR_NOMEM, "chat: out of memory for %zu messages", n);
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content) {
            free(role);
            return es_error(ES_ERR_INVALID_ARG, "chat: message %zu has a NULL %s", i,
                            r ? "content" : "role");
        }
        if (strcmp(r, "system") == 0) {
            role[i] = ROLE_SYSTEM;
        } else if (strcmp(r, "user") == 0) {
            role[i] = ROLE_USER;
        } else if (strcmp(r, "assistant") == 0) {
            role[i] = ROLE_ASSISTANT;
        } else {
            free(role);
            return es_error(ES_ERR_INVALID_ARG,
                            "chat: message %zu has role '%.40s' (want system, user or assistant)",
                            i, r);
        }
    }

    conv c = {
        .f = f,
        .msgs = msgs,
        .role = role,
        .n = n,
        .opt = opt,
        .bos = opt->bos_text ? opt->bos_text
               : f->bos      ? f->bos
                             : "",
        .eos = opt->eos_text ? opt->eos_text
               : f->eos      ? f->eos
                             : "",
    };
    es_strbuf sb = {0};
    es_status st = f->render ? f->render(&c, &sb) : render_turns(&c, &sb);
    free(role);
    if (st == ES_OK && !sb.data) { /* nothing appended: an empty string */
        sb.data = malloc(1);
        if (sb.data)
            sb.data[0] = '\0';
        else
            sb.failed = true;
    }
    if (st == ES_OK && sb.failed)
        st = es_error(ES_ERR_NOMEM, "chat: out of memory rendering %zu messages", n);
    if (st != ES_OK) {
        free(sb.data);
        return st;
    }
    *out = sb.data;
    return ES_OK;
}

es_status es_chat_render(es_chat_format fmt, const es_chat_msg *msgs, size_t n,
                         bool add_generation_prompt, char **out) {
    es_chat_options opt = es_chat_default_options();
    opt.add_generation_prompt = add_generation_prompt;
    return es_chat_render_ex(fmt, msgs, n, &opt, out);
}
