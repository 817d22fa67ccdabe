/* es_chat_detect_model: the chat format of a loaded model, from its template or, when
 * the GGUF has none, from its architecture. */
#include "emosteer.h"
#include <string.h>

/* GGUFs converted without tokenizer.chat_template (the Hugging Face repos of these
 * chat models have none, or the converter predates it): the format their chat
 * variants use. A base model of the same architecture gets the chat format too; name
 * --chat-template none for plain text. */
static const struct {
    const char *arch;
    es_chat_format fmt;
} arch_fallback[] = {
    {"qwen", ES_CHAT_QWEN},          /* Qwen-7B/14B-Chat make_context */
    {"baichuan", ES_CHAT_BAICHUAN2}, /* Baichuan2-7B/13B-Chat build_chat_input */
    {"minicpm3", ES_CHAT_MINICPM3},  /* MiniCPM3-4B */
    {"qwen3", ES_CHAT_QWEN3},        /* Qwen3 dense */
    {"qwen3moe", ES_CHAT_QWEN3},     /* Qwen3-30B-A3B and other Qwen3 MoE: Qwen3's template */
};

es_chat_format es_chat_detect_model(const es_model *model) {
    if (!model) return ES_CHAT_NONE;
    const char *tmpl = es_model_chat_template(model);
    es_chat_format f = es_chat_detect(tmpl);
    if (f != ES_CHAT_NONE) return f; /* a template: what it says, even UNKNOWN */
    es_model_info info;
    es_model_get_info(model, &info);
    if (!info.arch) return ES_CHAT_NONE;
    for (size_t i = 0; i < sizeof arch_fallback / sizeof arch_fallback[0]; i++)
        if (strcmp(info.arch, arch_fallback[i].arch) == 0) return arch_fallback[i].fmt;
    return ES_CHAT_NONE;
}
