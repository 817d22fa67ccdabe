/*
 * chat.c — chat templates without Jinja: recognise a model's template by markers and
 * render conversations with our own code, byte for byte what Hugging Face's
 * apply_chat_template produces for system / user / assistant messages.
 *
 * Each renderer below transcribes one template's logic for messages without tools.
 * Two string functions mirror Python exactly because the templates call them:
 *   - py_strip: str.strip() / Jinja's |trim, which remove Unicode whitespace
 *     (str.isspace: \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680,
 *     U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000);
 *   - nl_lstrip / nl_rstrip: str.lstrip('\n') / str.rstrip('\n').
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

/* ---- a growable output string ---- */

typedef struct strbuf {
    char *data; /* [cap] NUL-terminated text */
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; later appends are ignored */
} strbuf;

static void sb_append(strbuf *sb, const char *s, size_t n) {
    if (sb->failed || n == 0) return;
    size_t need;
    if (!es_add_size(sb->len, n, &need) || !es_add_size(need, 1, &need)) {
        sb->failed = true;
        return;
    }
    if (need > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                cap = need;
                break;
            }
            cap *= 2;
        }
        char *p = realloc(sb->data, cap);
        if (!p) {
            sb->failed = true;
            return;
        }
        sb->data = p;
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s) {
    sb_append(sb, s, strlen(s));
}

/* A borrowed slice of a message's content. */
typedef struct slice {
    const char *p;
    size_t n;
} slice;

static slice sl(const char *s) {
    return (slice){s, strlen(s)};
}
static void sb_slice(strbuf *sb, slice s) {
    sb_append(sb, s.p, s.n);
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

/* ---- names, detection ---- */

static const char *const format_names[ES_CHAT_FORMAT_COUNT] = {
    [ES_CHAT_NONE] = "none",         [ES_CHAT_UNKNOWN] = "unknown", [ES_CHAT_LLAMA3] = "llama3",
    [ES_CHAT_LLAMA3_0] = "llama3.0", [ES_CHAT_CHATML] = "chatml",   [ES_CHAT_QWEN3] = "qwen3",
    [ES_CHAT_GEMMA] = "gemma",       [ES_CHAT_PHI3] = "phi3",       [ES_CHAT_MISTRAL] = "mistral",
    [ES_CHAT_LLAMA2] = "llama2",     [ES_CHAT_MINICPM] = "minicpm",
};

static const struct {
    const char *name;
    es_chat_format fmt;
} format_aliases[] = {
    {"llama3.1", ES_CHAT_LLAMA3}, {"qwen2.5", ES_CHAT_CHATML}, {"gemma2", ES_CHAT_GEMMA},
    {"gemma3", ES_CHAT_GEMMA},    {"phi3.5", ES_CHAT_PHI3},    {"mistral-nemo", ES_CHAT_MISTRAL},
};

const char *es_chat_format_name(es_chat_format fmt) {
    if ((int)fmt < 0 || fmt >= ES_CHAT_FORMAT_COUNT) return "unknown";
    return format_names[fmt];
}

es_status es_chat_parse_name(const char *name, es_chat_format *out) {
    if (!name || !out) return es_error(ES_ERR_INVALID_ARG, "chat: NULL template name");
    for (int f = 0; f < ES_CHAT_FORMAT_COUNT; f++) {
        if (f == ES_CHAT_UNKNOWN) continue;
        if (strcmp(name, format_names[f]) == 0) {
            *out = (es_chat_format)f;
            return ES_OK;
        }
    }
    for (size_t i = 0; i < ES_ARRAY_LEN(format_aliases); i++) {
        if (strcmp(name, format_aliases[i].name) == 0) {
            *out = format_aliases[i].fmt;
            return ES_OK;
        }
    }
    return es_error(ES_ERR_INVALID_ARG,
                    "chat: unknown template name '%s' (none, llama3, llama3.0, chatml, qwen3, "
                    "gemma, phi3, mistral, llama2, minicpm)",
                    name);
}

static bool has(const char *t, const char *marker) {
    return strstr(t, marker) != NULL;
}

es_chat_format es_chat_detect(const char *t) {
    if (!t) return ES_CHAT_NONE;
    slice all = py_strip(sl(t));
    if (all.n == 0) return ES_CHAT_NONE;

    if (has(t, "<|start_header_id|>") && has(t, "<|eot_id|>"))
        return has(t, "Cutting Knowledge Date") ? ES_CHAT_LLAMA3 : ES_CHAT_LLAMA3_0;
    if (has(t, "<|im_start|>")) {
        /* the Qwen 3 logic: reasoning split off assistant turns before the last query */
        if (has(t, "<think>") && has(t, "reasoning_content") && has(t, "last_query_index"))
            return has(t, "bos_token") ? ES_CHAT_MINICPM : ES_CHAT_QWEN3;
        if (has(t, "<think>")) return ES_CHAT_UNKNOWN; /* QwQ-style: other think handling */
        if (has(t, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."))
            return ES_CHAT_CHATML;
        return ES_CHAT_UNKNOWN; /* other ChatML variants inject other default systems */
    }
    if (has(t, "<start_of_turn>")) return ES_CHAT_GEMMA;
    /* Phi 3.5: a system role and an explicit generation prompt (the first Phi-3 template
     * opened the assistant turn after every user message and dropped the system). */
    if ((has(t, "<|user|>\n") || has(t, "<|user|>\\n")) && has(t, "<|assistant|>") &&
        has(t, "<|end|>") && has(t, "<|system|>") && has(t, "add_generation_prompt"))
        return ES_CHAT_PHI3;
    if (has(t, "[INST]")) {
        if (has(t, "<<SYS>>")) return ES_CHAT_LLAMA2;
        if (has(t, "\"[INST]\" +") || has(t, "'[INST]' +")) return ES_CHAT_MISTRAL;
        return ES_CHAT_UNKNOWN; /* "[INST] " with a space: Mistral v1-v3 variants */
    }
    return ES_CHAT_UNKNOWN;
}

bool es_chat_includes_bos(es_chat_format fmt) {
    switch (fmt) {
    case ES_CHAT_LLAMA3:
    case ES_CHAT_LLAMA3_0:
    case ES_CHAT_GEMMA:
    case ES_CHAT_MISTRAL:
    case ES_CHAT_LLAMA2:
    case ES_CHAT_MINICPM: return true;
    default: return false;
    }
}

const char *es_chat_end_of_turn(es_chat_format fmt) {
    switch (fmt) {
    case ES_CHAT_LLAMA3:
    case ES_CHAT_LLAMA3_0: return "<|eot_id|>";
    case ES_CHAT_CHATML:
    case ES_CHAT_QWEN3:
    case ES_CHAT_MINICPM: return "<|im_end|>";
    case ES_CHAT_GEMMA: return "<end_of_turn>";
    case ES_CHAT_PHI3: return "<|end|>";
    case ES_CHAT_MISTRAL:
    case ES_CHAT_LLAMA2: return "</s>";
    default: return "";
    }
}

static const char *default_bos(es_chat_format fmt) {
    switch (fmt) {
    case ES_CHAT_LLAMA3:
    case ES_CHAT_LLAMA3_0: return "<|begin_of_text|>";
    case ES_CHAT_GEMMA: return "<bos>";
    case ES_CHAT_PHI3:
    case ES_CHAT_MISTRAL:
    case ES_CHAT_LLAMA2:
    case ES_CHAT_MINICPM: return "<s>";
    default: return "";
    }
}

static const char *default_eos(es_chat_format fmt) {
    switch (fmt) {
    case ES_CHAT_PHI3: return "<|endoftext|>";
    case ES_CHAT_MISTRAL:
    case ES_CHAT_LLAMA2: return "</s>";
    case ES_CHAT_GEMMA: return "<eos>";
    case ES_CHAT_LLAMA3:
    case ES_CHAT_LLAMA3_0: return "<|eot_id|>";
    case ES_CHAT_CHATML:
    case ES_CHAT_QWEN3:
    case ES_CHAT_MINICPM: return "<|im_end|>";
    default: return "";
    }
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

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

/* What every renderer gets: the messages with parsed roles. */
typedef struct conv {
    const es_chat_msg *msgs; /* [n] */
    const enum role *role;   /* [n] */
    size_t n;
    const es_chat_options *opt;
    const char *bos;
    const char *eos;
} conv;

static slice content(const conv *c, size_t i) {
    return sl(c->msgs[i].content);
}

/* Gemma, Mistral and Llama 2: after an optional first system message, roles must
 * alternate user/assistant/... — the templates' "(role == 'user') != (i % 2 == 0)". */
static es_status check_alternation(const conv *c, size_t first, const char *who) {
    for (size_t i = first; i < c->n; i++) {
        bool even = ((i - first) % 2) == 0;
        if ((c->role[i] == ROLE_USER) != even)
            return es_error(ES_ERR_INVALID_ARG,
                            "chat: %s: message %zu has role '%s'; after an optional first system "
                            "message roles must alternate user/assistant/user/...",
                            who, i, c->msgs[i].role);
    }
    return ES_OK;
}

static const char *const role_names[] = {"system", "user", "assistant"};

static void llama3_turn(strbuf *sb, enum role r, slice text) {
    sb_puts(sb, "<|start_header_id|>");
    sb_puts(sb, role_names[r]);
    sb_puts(sb, "<|end_header_id|>\n\n");
    sb_slice(sb, py_strip(text));
    sb_puts(sb, "<|eot_id|>");
}

/* Llama 3.1: the system header always comes first, with the knowledge/today dates. */
static es_status render_llama3(const conv *c, strbuf *sb) {
    size_t first = 0;
    slice system = sl("");
    if (c->role[0] == ROLE_SYSTEM) {
        system = py_strip(content(c, 0));
        first = 1;
    }
    sb_puts(sb, c->bos);
    sb_puts(sb, "<|start_header_id|>system<|end_header_id|>\n\n");
    sb_puts(sb, "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
    sb_slice(sb, system);
    sb_puts(sb, "<|eot_id|>");
    for (size_t i = first; i < c->n; i++)
        llama3_turn(sb, c->role[i], content(c, i));
    if (c->opt->add_generation_prompt)
        sb_puts(sb, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return ES_OK;
}

/* Llama 3.0: BOS, then every message as a header block. */
static es_status render_llama3_0(const conv *c, strbuf *sb) {
    sb_puts(sb, c->bos);
    for (size_t i = 0; i < c->n; i++)
        llama3_turn(sb, c->role[i], content(c, i));
    if (c->opt->add_generation_prompt)
        sb_puts(sb, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return ES_OK;
}

static void chatml_turn(strbuf *sb, const char *role, slice text) {
    sb_puts(sb, "<|im_start|>");
    sb_puts(sb, role);
    sb_puts(sb, "\n");
    sb_slice(sb, text);
    sb_puts(sb, "<|im_end|>\n");
}

/* Qwen 2.5: a system turn always, the default one when none is given. */
static es_status render_chatml(const conv *c, strbuf *sb) {
    if (c->role[0] == ROLE_SYSTEM)
        chatml_turn(sb, "system", content(c, 0));
    else
        chatml_turn(sb, "system",
                    sl("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    for (size_t i = 0; i < c->n; i++) {
        if (i == 0 && c->role[i] == ROLE_SYSTEM) continue;
        chatml_turn(sb, c->msgs[i].role, content(c, i));
    }
    if (c->opt->add_generation_prompt) sb_puts(sb, "<|im_start|>assistant\n");
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
static es_status render_qwen3_like(const conv *c, strbuf *sb, bool minicpm) {
    if (minicpm) sb_puts(sb, c->bos);
    if (c->role[0] == ROLE_SYSTEM) chatml_turn(sb, "system", content(c, 0));
    size_t last_query = last_query_index(c);
    for (size_t i = 0; i < c->n; i++) {
        if (c->role[i] == ROLE_USER || (c->role[i] == ROLE_SYSTEM && i > 0)) {
            chatml_turn(sb, c->msgs[i].role, content(c, i));
        } else if (c->role[i] == ROLE_ASSISTANT) {
            slice reasoning, answer;
            split_think(content(c, i), &reasoning, &answer);
            bool last = i == c->n - 1;
            bool think_block =
                i > last_query && (minicpm ? reasoning.n > 0 : (last || reasoning.n > 0));
            sb_puts(sb, "<|im_start|>assistant\n");
            if (think_block) {
                sb_puts(sb, "<think>\n");
                sb_slice(sb, nl_lstrip(nl_rstrip(reasoning)));
                sb_puts(sb, "\n</think>\n\n");
                sb_slice(sb, nl_lstrip(answer));
            } else {
                sb_slice(sb, answer);
            }
            sb_puts(sb, "<|im_end|>\n");
        }
    }
    if (c->opt->add_generation_prompt) {
        sb_puts(sb, "<|im_start|>assistant\n");
        if (c->opt->thinking == ES_CHAT_THINK_OFF) sb_puts(sb, "<think>\n\n</think>\n\n");
        if (minicpm && c->opt->thinking == ES_CHAT_THINK_ON) sb_puts(sb, "<think>\n");
    }
    return ES_OK;
}

/* Gemma 3 (and 1/2 without a system message). */
static es_status render_gemma(const conv *c, strbuf *sb) {
    size_t first = c->role[0] == ROLE_SYSTEM ? 1 : 0;
    es_status st = check_alternation(c, first, "gemma");
    if (st != ES_OK) return st;
    sb_puts(sb, c->bos);
    for (size_t i = first; i < c->n; i++) {
        sb_puts(sb, "<start_of_turn>");
        sb_puts(sb, c->role[i] == ROLE_ASSISTANT ? "model" : c->msgs[i].role);
        sb_puts(sb, "\n");
        if (i == first && first == 1) {
            sb_slice(sb, content(c, 0));
            sb_puts(sb, "\n\n");
        }
        sb_slice(sb, py_strip(content(c, i)));
        sb_puts(sb, "<end_of_turn>\n");
    }
    if (c->opt->add_generation_prompt) sb_puts(sb, "<start_of_turn>model\n");
    return ES_OK;
}

/* Phi 3.5: empty system messages are skipped; without a generation prompt the text
 * ends with EOS. */
static es_status render_phi3(const conv *c, strbuf *sb) {
    static const char *const tag[] = {"<|system|>\n", "<|user|>\n", "<|assistant|>\n"};
    for (size_t i = 0; i < c->n; i++) {
        slice t = content(c, i);
        if (c->role[i] == ROLE_SYSTEM && t.n == 0) continue;
        sb_puts(sb, tag[c->role[i]]);
        sb_slice(sb, t);
        sb_puts(sb, "<|end|>\n");
    }
    if (c->opt->add_generation_prompt)
        sb_puts(sb, "<|assistant|>\n");
    else
        sb_puts(sb, c->eos);
    return ES_OK;
}

/* Mistral Nemo: the system message goes in front of the last message when that is a
 * user message (and is dropped otherwise, as the template does). */
static es_status render_mistral(const conv *c, strbuf *sb) {
    size_t first = c->role[0] == ROLE_SYSTEM ? 1 : 0;
    es_status st = check_alternation(c, first, "mistral");
    if (st != ES_OK) return st;
    /* alternation leaves a later system message only at odd places; the template
     * refuses those with "Only user and assistant roles are supported" */
    for (size_t i = first; i < c->n; i++)
        if (c->role[i] == ROLE_SYSTEM)
            return es_error(ES_ERR_INVALID_ARG,
                            "chat: mistral: message %zu: only the first message may be a system "
                            "message",
                            i);
    sb_puts(sb, c->bos);
    for (size_t i = first; i < c->n; i++) {
        if (c->role[i] == ROLE_USER) {
            sb_puts(sb, "[INST]");
            if (i == c->n - 1 && first == 1) {
                sb_slice(sb, content(c, 0));
                sb_puts(sb, "\n\n");
            }
            sb_slice(sb, content(c, i));
            sb_puts(sb, "[/INST]");
        } else {
            sb_slice(sb, content(c, i));
            sb_puts(sb, c->eos);
        }
    }
    return ES_OK;
}

/* Llama 2 chat: BOS before every [INST]; the system block opens the first user turn;
 * a later system message (possible at odd places) renders nothing, as in the template. */
static es_status render_llama2(const conv *c, strbuf *sb) {
    size_t first = c->role[0] == ROLE_SYSTEM ? 1 : 0;
    es_status st = check_alternation(c, first, "llama2");
    if (st != ES_OK) return st;
    strbuf tmp = {0};
    for (size_t i = first; i < c->n; i++) {
        slice text = content(c, i);
        if (i == first && first == 1) {
            /* content = '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content, then .strip() */
            tmp.len = 0;
            sb_puts(&tmp, "<<SYS>>\n");
            sb_slice(&tmp, content(c, 0));
            sb_puts(&tmp, "\n<</SYS>>\n\n");
            sb_slice(&tmp, text);
            if (tmp.failed) break;
            text = (slice){tmp.data, tmp.len};
        }
        if (c->role[i] == ROLE_USER) {
            sb_puts(sb, c->bos);
            sb_puts(sb, "[INST] ");
            sb_slice(sb, py_strip(text));
            sb_puts(sb, " [/INST]");
        } else if (c->role[i] == ROLE_ASSISTANT) {
            sb_puts(sb, " ");
            sb_slice(sb, py_strip(text));
            sb_puts(sb, " ");
            sb_puts(sb, c->eos);
        }
    }
    if (tmp.failed) sb->failed = true;
    free(tmp.data);
    return ES_OK;
}

/* No template: the contents joined by "\n". */
static es_status render_none(const conv *c, strbuf *sb) {
    for (size_t i = 0; i < c->n; i++) {
        if (i > 0) sb_puts(sb, "\n");
        sb_slice(sb, content(c, i));
    }
    return ES_OK;
}

es_status es_chat_render_ex(es_chat_format fmt, const es_chat_msg *msgs, size_t n,
                            const es_chat_options *opt, char **out) {
    if (!out) return es_error(ES_ERR_INVALID_ARG, "chat: NULL output pointer");
    if (!opt) return es_error(ES_ERR_INVALID_ARG, "chat: NULL options");
    if ((int)fmt < 0 || fmt >= ES_CHAT_FORMAT_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "chat: format %d is out of range", (int)fmt);
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
        .msgs = msgs,
        .role = role,
        .n = n,
        .opt = opt,
        .bos = opt->bos_text ? opt->bos_text : default_bos(fmt),
        .eos = opt->eos_text ? opt->eos_text : default_eos(fmt),
    };
    strbuf sb = {0};
    es_status st;
    switch (fmt) {
    case ES_CHAT_LLAMA3: st = render_llama3(&c, &sb); break;
    case ES_CHAT_LLAMA3_0: st = render_llama3_0(&c, &sb); break;
    case ES_CHAT_CHATML: st = render_chatml(&c, &sb); break;
    case ES_CHAT_QWEN3: st = render_qwen3_like(&c, &sb, false); break;
    case ES_CHAT_MINICPM: st = render_qwen3_like(&c, &sb, true); break;
    case ES_CHAT_GEMMA: st = render_gemma(&c, &sb); break;
    case ES_CHAT_PHI3: st = render_phi3(&c, &sb); break;
    case ES_CHAT_MISTRAL: st = render_mistral(&c, &sb); break;
    case ES_CHAT_LLAMA2: st = render_llama2(&c, &sb); break;
    default: st = render_none(&c, &sb); break;
    }
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
