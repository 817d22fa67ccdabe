/*
 * test_chat.c — chat templates and stop strings.
 *
 * The expected texts below were produced by rendering the real templates
 * (the .jinja files in ../shared/templates; Gemma 3, Llama 2 chat and Llama 3.0 templates
 * transcribed from their tokenizer_config.json) with Python jinja2 3.1 the way
 * transformers' apply_chat_template does (sandboxed environment, trim_blocks,
 * lstrip_blocks, raise_exception, bos/eos of the family), for the conversations of
 * `convs` below. NULL means the template raises an exception for that conversation.
 */
#include "emosteer.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

typedef struct conv_def {
    const char *name;
    es_chat_msg msgs[4];
    size_t n;
} conv_def;

static const conv_def convs[] = {
    {"basic",
     {{"system", "You are a calm assistant."},
      {"user", "Hello! How are you?"},
      {"assistant", "I am fine, thank you."},
      {"user", "Tell me a joke about cats."}},
     4},
    {"edge",
     {{"system", "  Be brief.\n"},
      {"user", " \tWhat is 2+2?\n\n"},
      {"assistant", "<think>\nadding\n</think>\n\n4 \xc2\xa0"},
      {"user", "And 3+3?\xe3\x80\x80"}},
     4},
    {"nosys", {{"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}}, 3},
    {"closed",
     {{"system", "Sys"}, {"user", "Q?"}, {"assistant", "<think>\nhmm\n</think>\n\nA."}},
     3},
    {"closedplain", {{"user", "Q?"}, {"assistant", "\nA."}}, 2},
    {"twoasst", {{"user", "Q"}, {"assistant", "<think>r1</think>a1"}, {"assistant", "a2"}}, 3},
    {"toolresp",
     {{"user", "Q"},
      {"assistant", "<think>\nr\n</think>\n\nA"},
      {"user", "<tool_response>x</tool_response>"}},
     3},
    {"midsys", {{"system", "S1"}, {"user", "U1"}, {"system", "S2"}, {"user", "U2"}}, 4},
    {"emptysys", {{"system", ""}, {"user", "Hi"}}, 2},
    {"onlysys", {{"system", "Only"}}, 1},
    {"badorder", {{"assistant", "A"}, {"user", "U"}}, 2},
};

typedef struct render_case {
    const char *fmt;
    const char *conv; /* a convs name, or NAME-think-on / NAME-think-off */
    bool add_generation_prompt;
    const char *expect; /* NULL: the template refuses the conversation */
} render_case;

static const render_case cases[] = {
    {"llama3", "basic", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul 2024\n\nYou are a calm "
     "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello! How are "
     "you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am fine, thank "
     "you.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke about "
     "cats.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "edge", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul 2024\n\nBe "
     "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is "
     "2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadding\n</"
     "think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd "
     "3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "nosys", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>"
     "\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "closed", false,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\nSys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n<think>\nhmm\n</think>\n\nA.<|eot_id|>"},
    {"llama3", "closedplain", false,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\nA.<|eot_id|>"},
    {"llama3", "twoasst", false,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>r1</"
     "think>a1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\na2<|eot_id|>"},
    {"llama3", "toolresp", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>\nr\n</"
     "think>\n\nA<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<tool_response>x</"
     "tool_response><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "midsys", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\nS1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|><|start_header_"
     "id|>system<|end_header_id|>\n\nS2<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<|"
     "eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "emptysys", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n"},
    {"llama3", "onlysys", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\nOnly<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "badorder", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|><|start_header_"
     "id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3.0", "basic", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a calm "
     "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello! How are "
     "you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am fine, thank "
     "you.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke about "
     "cats.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3.0", "edge", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe "
     "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is "
     "2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadding\n</"
     "think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd "
     "3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3.0", "nosys", true,
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>"
     "\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3.0", "closed", false,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|><|start_header_"
     "id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<"
     "think>\nhmm\n</think>\n\nA.<|eot_id|>"},
    {"llama3.0", "closedplain", false,
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\nA.<|eot_id|>"},
    {"llama3.0", "twoasst", false,
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>r1</"
     "think>a1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\na2<|eot_id|>"},
    {"llama3.0", "toolresp", true,
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>\nr\n</"
     "think>\n\nA<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<tool_response>x</"
     "tool_response><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3.0", "midsys", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS1<|eot_id|><|start_header_id|"
     ">user<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nS2<|eot_"
     "id|><|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|"
     "end_header_id|>\n\n"},
    {"llama3.0", "emptysys", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n<|eot_id|><|start_header_id|>"
     "user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3.0", "onlysys", true,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nOnly<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n"},
    {"llama3.0", "badorder", true,
     "<|begin_of_text|><|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|><|start_header_"
     "id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"chatml", "basic", true,
     "<|im_start|>system\nYou are a calm assistant.<|im_end|>\n<|im_start|>user\nHello! How are "
     "you?<|im_end|>\n<|im_start|>assistant\nI am fine, thank "
     "you.<|im_end|>\n<|im_start|>user\nTell me a joke about "
     "cats.<|im_end|>\n<|im_start|>assistant\n"},
    {"chatml", "edge", true,
     "<|im_start|>system\n  Be brief.\n<|im_end|>\n<|im_start|>user\n \tWhat is "
     "2+2?\n\n<|im_end|>\n<|im_start|>assistant\n<think>\nadding\n</think>\n\n4 \xc2"
     "\xa0"
     "<|im_end|>\n<|im_start|>user\nAnd 3+3?\xe3"
     "\x80"
     "\x80"
     "<|im_end|>\n<|im_start|>assistant\n"},
    {"chatml", "nosys", true,
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>"
     "\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
    {"chatml", "closed", false,
     "<|im_start|>system\nSys<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<"
     "think>\nhmm\n</think>\n\nA.<|im_end|>\n"},
    {"chatml", "closedplain", false,
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n\nA.<|im_end|>"
     "\n"},
    {"chatml", "twoasst", false,
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>r1</"
     "think>a1<|im_end|>\n<|im_start|>assistant\na2<|im_end|>\n"},
    {"chatml", "toolresp", true,
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</"
     "think>\n\nA<|im_end|>\n<|im_start|>user\n<tool_response>x</"
     "tool_response><|im_end|>\n<|im_start|>assistant\n"},
    {"chatml", "midsys", true,
     "<|im_start|>system\nS1<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>system\nS2<|im_"
     "end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"},
    {"chatml", "emptysys", true,
     "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
    {"chatml", "onlysys", true, "<|im_start|>system\nOnly<|im_end|>\n<|im_start|>assistant\n"},
    {"chatml", "badorder", true,
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|"
     "im_start|>assistant\n"},
    {"qwen3", "basic", true,
     "<|im_start|>system\nYou are a calm assistant.<|im_end|>\n<|im_start|>user\nHello! How are "
     "you?<|im_end|>\n<|im_start|>assistant\nI am fine, thank "
     "you.<|im_end|>\n<|im_start|>user\nTell me a joke about "
     "cats.<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "edge", true,
     "<|im_start|>system\n  Be brief.\n<|im_end|>\n<|im_start|>user\n \tWhat is "
     "2+2?\n\n<|im_end|>\n<|im_start|>assistant\n4 \xc2"
     "\xa0"
     "<|im_end|>\n<|im_start|>user\nAnd 3+3?\xe3"
     "\x80"
     "\x80"
     "<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "nosys", true,
     "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>"
     "user\nBye<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "closed", false,
     "<|im_start|>system\nSys<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<"
     "think>\nhmm\n</think>\n\nA.<|im_end|>\n"},
    {"qwen3", "closedplain", false,
     "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</"
     "think>\n\nA.<|im_end|>\n"},
    {"qwen3", "twoasst", false,
     "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</"
     "think>\n\na1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\na2<|im_end|>\n"},
    {"qwen3", "toolresp", true,
     "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</"
     "think>\n\nA<|im_end|>\n<|im_start|>user\n<tool_response>x</"
     "tool_response><|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "midsys", true,
     "<|im_start|>system\nS1<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>system\nS2<|im_"
     "end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "emptysys", true,
     "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "onlysys", true, "<|im_start|>system\nOnly<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "badorder", true,
     "<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"},
    {"gemma", "basic", true,
     "<bos><start_of_turn>user\nYou are a calm assistant.\n\nHello! How are "
     "you?<end_of_turn>\n<start_of_turn>model\nI am fine, thank "
     "you.<end_of_turn>\n<start_of_turn>user\nTell me a joke about "
     "cats.<end_of_turn>\n<start_of_turn>model\n"},
    {"gemma", "edge", true,
     "<bos><start_of_turn>user\n  Be brief.\n\n\nWhat is "
     "2+2?<end_of_turn>\n<start_of_turn>model\n<think>\nadding\n</"
     "think>\n\n4<end_of_turn>\n<start_of_turn>user\nAnd "
     "3+3?<end_of_turn>\n<start_of_turn>model\n"},
    {"gemma", "nosys", true,
     "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_"
     "of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"},
    {"gemma", "closed", false,
     "<bos><start_of_turn>user\nSys\n\nQ?<end_of_turn>\n<start_of_turn>model\n<think>\nhmm\n</"
     "think>\n\nA.<end_of_turn>\n"},
    {"gemma", "closedplain", false,
     "<bos><start_of_turn>user\nQ?<end_of_turn>\n<start_of_turn>model\nA.<end_of_turn>\n"},
    {"gemma", "twoasst", false, NULL},
    {"gemma", "toolresp", true,
     "<bos><start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\n<think>\nr\n</"
     "think>\n\nA<end_of_turn>\n<start_of_turn>user\n<tool_response>x</"
     "tool_response><end_of_turn>\n<start_of_turn>model\n"},
    {"gemma", "midsys", true,
     "<bos><start_of_turn>user\nS1\n\nU1<end_of_turn>\n<start_of_turn>system\nS2<end_of_turn>\n<"
     "start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n"},
    {"gemma", "emptysys", true,
     "<bos><start_of_turn>user\n\n\nHi<end_of_turn>\n<start_of_turn>model\n"},
    {"gemma", "onlysys", true, "<bos><start_of_turn>model\n"},
    {"gemma", "badorder", true, NULL},
    {"phi3", "basic", true,
     "<|system|>\nYou are a calm assistant.<|end|>\n<|user|>\nHello! How are "
     "you?<|end|>\n<|assistant|>\nI am fine, thank you.<|end|>\n<|user|>\nTell me a joke about "
     "cats.<|end|>\n<|assistant|>\n"},
    {"phi3", "edge", true,
     "<|system|>\n  Be brief.\n<|end|>\n<|user|>\n \tWhat is "
     "2+2?\n\n<|end|>\n<|assistant|>\n<think>\nadding\n</think>\n\n4 \xc2"
     "\xa0"
     "<|end|>\n<|user|>\nAnd 3+3?\xe3"
     "\x80"
     "\x80"
     "<|end|>\n<|assistant|>\n"},
    {"phi3", "nosys", true,
     "<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n"},
    {"phi3", "closed", false,
     "<|system|>\nSys<|end|>\n<|user|>\nQ?<|end|>\n<|assistant|>\n<think>\nhmm\n</"
     "think>\n\nA.<|end|>\n<|endoftext|>"},
    {"phi3", "closedplain", false,
     "<|user|>\nQ?<|end|>\n<|assistant|>\n\nA.<|end|>\n<|endoftext|>"},
    {"phi3", "twoasst", false,
     "<|user|>\nQ<|end|>\n<|assistant|>\n<think>r1</"
     "think>a1<|end|>\n<|assistant|>\na2<|end|>\n<|endoftext|>"},
    {"phi3", "toolresp", true,
     "<|user|>\nQ<|end|>\n<|assistant|>\n<think>\nr\n</"
     "think>\n\nA<|end|>\n<|user|>\n<tool_response>x</tool_response><|end|>\n<|assistant|>\n"},
    {"phi3", "midsys", true,
     "<|system|>\nS1<|end|>\n<|user|>\nU1<|end|>\n<|system|>\nS2<|end|>\n<|user|>\nU2<|end|>\n<|"
     "assistant|>\n"},
    {"phi3", "emptysys", true, "<|user|>\nHi<|end|>\n<|assistant|>\n"},
    {"phi3", "onlysys", true, "<|system|>\nOnly<|end|>\n<|assistant|>\n"},
    {"phi3", "badorder", true, "<|assistant|>\nA<|end|>\n<|user|>\nU<|end|>\n<|assistant|>\n"},
    {"mistral", "basic", true,
     "<s>[INST]Hello! How are you?[/INST]I am fine, thank you.</s>[INST]You are a calm "
     "assistant.\n\nTell me a joke about cats.[/INST]"},
    {"mistral", "edge", true,
     "<s>[INST] \tWhat is 2+2?\n\n[/INST]<think>\nadding\n</think>\n\n4 \xc2"
     "\xa0"
     "</s>[INST]  Be brief.\n\n\nAnd 3+3?\xe3"
     "\x80"
     "\x80"
     "[/INST]"},
    {"mistral", "nosys", true, "<s>[INST]Hi[/INST]Hello.</s>[INST]Bye[/INST]"},
    {"mistral", "closed", false, "<s>[INST]Q?[/INST]<think>\nhmm\n</think>\n\nA.</s>"},
    {"mistral", "closedplain", false, "<s>[INST]Q?[/INST]\nA.</s>"},
    {"mistral", "twoasst", false, NULL},
    {"mistral", "toolresp", true,
     "<s>[INST]Q[/INST]<think>\nr\n</think>\n\nA</s>[INST]<tool_response>x</tool_response>[/INST]"},
    {"mistral", "midsys", true, NULL},
    {"mistral", "emptysys", true, "<s>[INST]\n\nHi[/INST]"},
    {"mistral", "onlysys", true, "<s>"},
    {"mistral", "badorder", true, NULL},
    {"llama2", "basic", true,
     "<s>[INST] <<SYS>>\nYou are a calm assistant.\n<</SYS>>\n\nHello! How are you? [/INST] I am "
     "fine, thank you. </s><s>[INST] Tell me a joke about cats. [/INST]"},
    {"llama2", "edge", true,
     "<s>[INST] <<SYS>>\n  Be brief.\n\n<</SYS>>\n\n \tWhat is 2+2? [/INST] "
     "<think>\nadding\n</think>\n\n4 </s><s>[INST] And 3+3? [/INST]"},
    {"llama2", "nosys", true, "<s>[INST] Hi [/INST] Hello. </s><s>[INST] Bye [/INST]"},
    {"llama2", "closed", false,
     "<s>[INST] <<SYS>>\nSys\n<</SYS>>\n\nQ? [/INST] <think>\nhmm\n</think>\n\nA. </s>"},
    {"llama2", "closedplain", false, "<s>[INST] Q? [/INST] A. </s>"},
    {"llama2", "twoasst", false, NULL},
    {"llama2", "toolresp", true,
     "<s>[INST] Q [/INST] <think>\nr\n</think>\n\nA </s><s>[INST] <tool_response>x</tool_response> "
     "[/INST]"},
    {"llama2", "midsys", true, "<s>[INST] <<SYS>>\nS1\n<</SYS>>\n\nU1 [/INST]<s>[INST] U2 [/INST]"},
    {"llama2", "emptysys", true, "<s>[INST] <<SYS>>\n\n<</SYS>>\n\nHi [/INST]"},
    {"llama2", "onlysys", true, ""},
    {"llama2", "badorder", true, NULL},
    {"minicpm", "basic", true,
     "<s><|im_start|>system\nYou are a calm assistant.<|im_end|>\n<|im_start|>user\nHello! How are "
     "you?<|im_end|>\n<|im_start|>assistant\nI am fine, thank "
     "you.<|im_end|>\n<|im_start|>user\nTell me a joke about "
     "cats.<|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "edge", true,
     "<s><|im_start|>system\n  Be brief.\n<|im_end|>\n<|im_start|>user\n \tWhat is "
     "2+2?\n\n<|im_end|>\n<|im_start|>assistant\n4 \xc2"
     "\xa0"
     "<|im_end|>\n<|im_start|>user\nAnd 3+3?\xe3"
     "\x80"
     "\x80"
     "<|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "nosys", true,
     "<s><|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>"
     "user\nBye<|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "closed", false,
     "<s><|im_start|>system\nSys<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>"
     "assistant\n<think>\nhmm\n</think>\n\nA.<|im_end|>\n"},
    {"minicpm", "closedplain", false,
     "<s><|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n\nA.<|im_end|>\n"},
    {"minicpm", "twoasst", false,
     "<s><|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</"
     "think>\n\na1<|im_end|>\n<|im_start|>assistant\na2<|im_end|>\n"},
    {"minicpm", "toolresp", true,
     "<s><|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</"
     "think>\n\nA<|im_end|>\n<|im_start|>user\n<tool_response>x</"
     "tool_response><|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "midsys", true,
     "<s><|im_start|>system\nS1<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>system\nS2<|"
     "im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "emptysys", true,
     "<s><|im_start|>system\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "onlysys", true, "<s><|im_start|>system\nOnly<|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "badorder", true,
     "<s><|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>"
     "assistant\n"},
    {"qwen3", "basic-think-off", true,
     "<|im_start|>system\nYou are a calm assistant.<|im_end|>\n<|im_start|>user\nHello! How are "
     "you?<|im_end|>\n<|im_start|>assistant\nI am fine, thank "
     "you.<|im_end|>\n<|im_start|>user\nTell me a joke about "
     "cats.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"qwen3", "basic-think-on", true,
     "<|im_start|>system\nYou are a calm assistant.<|im_end|>\n<|im_start|>user\nHello! How are "
     "you?<|im_end|>\n<|im_start|>assistant\nI am fine, thank "
     "you.<|im_end|>\n<|im_start|>user\nTell me a joke about "
     "cats.<|im_end|>\n<|im_start|>assistant\n"},
    {"minicpm", "basic-think-off", true,
     "<s><|im_start|>system\nYou are a calm assistant.<|im_end|>\n<|im_start|>user\nHello! How are "
     "you?<|im_end|>\n<|im_start|>assistant\nI am fine, thank "
     "you.<|im_end|>\n<|im_start|>user\nTell me a joke about "
     "cats.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"minicpm", "basic-think-on", true,
     "<s><|im_start|>system\nYou are a calm assistant.<|im_end|>\n<|im_start|>user\nHello! How are "
     "you?<|im_end|>\n<|im_start|>assistant\nI am fine, thank "
     "you.<|im_end|>\n<|im_start|>user\nTell me a joke about "
     "cats.<|im_end|>\n<|im_start|>assistant\n<think>\n"},
};

static const conv_def *find_conv(const char *name, es_chat_thinking *thinking) {
    char base[32];
    snprintf(base, sizeof base, "%s", name);
    *thinking = ES_CHAT_THINK_DEFAULT;
    char *dash = strstr(base, "-think-");
    if (dash) {
        *thinking = strcmp(dash, "-think-on") == 0 ? ES_CHAT_THINK_ON : ES_CHAT_THINK_OFF;
        *dash = '\0';
    }
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++)
        if (strcmp(convs[i].name, base) == 0) return &convs[i];
    return NULL;
}

/* Prints where two texts first differ. */
static void show_diff(const char *got, const char *want) {
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    fprintf(stderr, "  first difference at byte %zu\n  got:  \"%s\"\n  want: \"%s\"\n", i, got,
            want);
}

static void test_render_cases(void) {
    int n_exact = 0, n_text = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const render_case *rc = &cases[k];
        es_chat_format fmt;
        CHECK(es_chat_parse_name(rc->fmt, &fmt) == ES_OK, "parse %s", rc->fmt);
        es_chat_thinking thinking;
        const conv_def *cv = find_conv(rc->conv, &thinking);
        if (!CHECK(cv != NULL, "conversation %s", rc->conv)) continue;
        es_chat_options opt = es_chat_default_options();
        opt.add_generation_prompt = rc->add_generation_prompt;
        opt.thinking = thinking;
        char *out = NULL;
        es_status st = es_chat_render_ex(fmt, cv->msgs, cv->n, &opt, &out);
        if (!rc->expect) {
            CHECK(st == ES_ERR_INVALID_ARG && out == NULL, "%s/%s: want refusal, got %d", rc->fmt,
                  rc->conv, st);
            CHECK(strlen(es_last_error()) > 0, "%s/%s: refusal has a message", rc->fmt, rc->conv);
            continue;
        }
        if (!CHECK(st == ES_OK, "%s/%s: render: %s", rc->fmt, rc->conv, es_last_error())) continue;
        bool same = strcmp(out, rc->expect) == 0;
        if (!CHECK(same, "%s/%s: text differs from the Jinja rendering", rc->fmt, rc->conv))
            show_diff(out, rc->expect);
        n_exact += same;
        n_text++;
        /* BOS in the text iff es_chat_includes_bos */
        bool starts_bos = strncmp(out, "<|begin_of_text|>", 17) == 0 ||
                          strncmp(out, "<bos>", 5) == 0 || strncmp(out, "<s>", 3) == 0;
        if (out[0] != '\0')
            CHECK(starts_bos == es_chat_includes_bos(fmt),
                  "%s/%s: includes_bos %d but text starts %.12s", rc->fmt, rc->conv,
                  es_chat_includes_bos(fmt), out);
        /* the plain entry point agrees when thinking is default */
        if (thinking == ES_CHAT_THINK_DEFAULT) {
            char *out2 = NULL;
            CHECK(es_chat_render(fmt, cv->msgs, cv->n, rc->add_generation_prompt, &out2) == ES_OK &&
                      strcmp(out2, out) == 0,
                  "%s/%s: es_chat_render == es_chat_render_ex", rc->fmt, rc->conv);
            free(out2);
        }
        free(out);
    }
    printf("render: %d of %d texts byte-exact with the Jinja rendering (%zu cases in all)\n",
           n_exact, n_text, sizeof cases / sizeof cases[0]);
}

/* Templates transcribed from tokenizer_config.json files that are not in ../shared. */
static const char gemma3_template[] =
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if "
    "messages[0]['content'] is "
    "string -%}\n        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n ... "
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}";
static const char llama2_template[] = "{% if messages[0]['role'] == 'system' %}{% set "
                                      "loop_messages = messages[1:] %}{% set system_message = "
                                      "messages[0]['content'] %}{% else %}{% set loop_messages = "
                                      "messages %}{% set system_message = false %}"
                                      "{% endif %}{% for message in loop_messages %}{% if "
                                      "loop.index0 == 0 and system_message != false %}{% set "
                                      "content = '<<SYS>>\\n' + system_message + "
                                      "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set "
                                      "content = message['content'] %}{% endif %}{% if "
                                      "message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
                                      "content.strip() + ' [/INST]' }}{% elif message['role'] == "
                                      "'assistant' %}{{ ' '  + content.strip() + ' ' "
                                      "+ eos_token }}{% endif %}{% endfor %}";
static const char llama30_template[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ "
    "content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}";
/* The first Phi-3 template (from ../shared/vocab/ggml-vocab-phi-3.gguf): no system role,
 * <|assistant|> after every user turn — not what ES_CHAT_PHI3 renders. */
static const char phi3_old_template[] =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' "
    "+ '\\n' + "
    "message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}{% elif (message['role'] == "
    "'assistant') %}{{message['content'] + '<|end|>' + '\\n'}}{% endif %}{% endfor %}";
/* Qwen 1.5/2 (from ../shared/vocab/ggml-vocab-qwen2.gguf): a different default system. */
static const char qwen2_old_template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' "
    "+ "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
static const char mistral_v1_template[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + "
    "eos_token}}{% endif %}{% endfor %}";

static void test_detect(void) {
    static const struct {
        const char *file;
        es_chat_format want;
    } files[] = {
        {"templates/meta-llama-Llama-3.1-8B-Instruct.jinja", ES_CHAT_LLAMA3},
        {"templates/Qwen-Qwen2.5-7B-Instruct.jinja", ES_CHAT_CHATML},
        {"templates/Qwen-Qwen3-0.6B.jinja", ES_CHAT_QWEN3},
        {"templates/google-gemma-2-2b-it.jinja", ES_CHAT_GEMMA},
        {"templates/microsoft-Phi-3.5-mini-instruct.jinja", ES_CHAT_PHI3},
        {"templates/mistralai-Mistral-Nemo-Instruct-2407.jinja", ES_CHAT_MISTRAL},
        {"templates/openbmb-MiniCPM5-1B.jinja", ES_CHAT_MINICPM},
    };
    if (es_test_shared()) {
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char *text = es_test_read_file(es_test_shared_path(files[i].file), NULL);
            if (!CHECK(text != NULL, "read %s", files[i].file)) continue;
            es_chat_format got = es_chat_detect(text);
            CHECK(got == files[i].want, "detect %s: got %s want %s", files[i].file,
                  es_chat_format_name(got), es_chat_format_name(files[i].want));
            free(text);
        }
    } else {
        printf("detect: ../shared absent, real template files not checked\n");
    }
    CHECK(es_chat_detect(gemma3_template) == ES_CHAT_GEMMA, "detect gemma 3");
    CHECK(es_chat_detect(llama2_template) == ES_CHAT_LLAMA2, "detect llama 2");
    CHECK(es_chat_detect(llama30_template) == ES_CHAT_LLAMA3_0, "detect llama 3.0");
    CHECK(es_chat_detect(phi3_old_template) == ES_CHAT_UNKNOWN, "first phi-3 template is unknown");
    CHECK(es_chat_detect(qwen2_old_template) == ES_CHAT_UNKNOWN, "qwen2 template is unknown");
    CHECK(es_chat_detect(mistral_v1_template) == ES_CHAT_UNKNOWN, "mistral v1 template is unknown");
    CHECK(
        es_chat_detect("{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + "
                       "message.content.split('</think>')[-1] + '<|im_end|>\\n' }}{%- endfor %}{{- "
                       "'<|im_start|>assistant\\n<think>\\n' }}") == ES_CHAT_UNKNOWN,
        "QwQ-style think template is unknown");
    CHECK(
        es_chat_detect(
            "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + "
            "'<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif "
            "%}") == ES_CHAT_UNKNOWN,
        "Phi-4-style template is unknown");
    CHECK(es_chat_detect(NULL) == ES_CHAT_NONE, "NULL -> none");
    CHECK(es_chat_detect("") == ES_CHAT_NONE, "empty -> none");
    CHECK(es_chat_detect(" \n\t ") == ES_CHAT_NONE, "blank -> none");
    CHECK(es_chat_detect("{% for m in messages %}{{ m.content }}{% endfor %}") == ES_CHAT_UNKNOWN,
          "unknown template");
}

static void test_names(void) {
    for (int f = 0; f < ES_CHAT_FORMAT_COUNT; f++) {
        if (f == ES_CHAT_UNKNOWN) continue;
        es_chat_format back = ES_CHAT_UNKNOWN;
        const char *name = es_chat_format_name((es_chat_format)f);
        CHECK(es_chat_parse_name(name, &back) == ES_OK && back == (es_chat_format)f,
              "name round trip %s", name);
    }
    static const struct {
        const char *name;
        es_chat_format fmt;
    } aliases[] = {{"llama3.1", ES_CHAT_LLAMA3}, {"qwen2.5", ES_CHAT_CHATML},
                   {"gemma2", ES_CHAT_GEMMA},    {"gemma3", ES_CHAT_GEMMA},
                   {"phi3.5", ES_CHAT_PHI3},     {"mistral-nemo", ES_CHAT_MISTRAL}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        es_chat_format f = ES_CHAT_UNKNOWN;
        CHECK(es_chat_parse_name(aliases[i].name, &f) == ES_OK && f == aliases[i].fmt, "alias %s",
              aliases[i].name);
    }
    es_chat_format f = ES_CHAT_LLAMA3;
    CHECK(es_chat_parse_name("alpaca", &f) == ES_ERR_INVALID_ARG && f == ES_CHAT_LLAMA3,
          "bad name refused");
    CHECK(strstr(es_last_error(), "alpaca") != NULL, "message names the bad value: %s",
          es_last_error());
    CHECK(es_chat_parse_name("unknown", &f) == ES_ERR_INVALID_ARG,
          "'unknown' is not a choosable name");
    CHECK(strcmp(es_chat_format_name(ES_CHAT_UNKNOWN), "unknown") == 0, "unknown name");
    CHECK(strcmp(es_chat_format_name((es_chat_format)99), "unknown") == 0, "out of range name");
    CHECK(strcmp(es_chat_end_of_turn(ES_CHAT_CHATML), "<|im_end|>") == 0, "chatml end of turn");
    CHECK(strcmp(es_chat_end_of_turn(ES_CHAT_LLAMA3), "<|eot_id|>") == 0, "llama3 end of turn");
    CHECK(strcmp(es_chat_end_of_turn(ES_CHAT_GEMMA), "<end_of_turn>") == 0, "gemma end of turn");
    CHECK(strcmp(es_chat_end_of_turn(ES_CHAT_NONE), "") == 0, "none end of turn");
}

static void test_render_misc(void) {
    char *out = NULL;
    const es_chat_msg two[] = {{"user", "Hi"}, {"assistant", "Yo"}};
    /* plain text */
    CHECK(es_chat_render(ES_CHAT_NONE, two, 2, true, &out) == ES_OK && strcmp(out, "Hi\nYo") == 0,
          "none joins");
    free(out);
    out = NULL;
    /* unknown, errors */
    CHECK(es_chat_render(ES_CHAT_UNKNOWN, two, 2, true, &out) == ES_ERR_UNSUPPORTED && !out,
          "unknown refused");
    CHECK(es_chat_render(ES_CHAT_CHATML, two, 0, true, &out) == ES_ERR_INVALID_ARG, "no messages");
    const es_chat_msg bad_role[] = {{"tool", "x"}};
    CHECK(es_chat_render(ES_CHAT_CHATML, bad_role, 1, true, &out) == ES_ERR_INVALID_ARG &&
              strstr(es_last_error(), "tool") != NULL,
          "bad role named: %s", es_last_error());
    const es_chat_msg null_content[] = {{"user", NULL}};
    CHECK(es_chat_render(ES_CHAT_CHATML, null_content, 1, true, &out) == ES_ERR_INVALID_ARG,
          "NULL content");
    CHECK(es_chat_render((es_chat_format)42, two, 2, true, &out) == ES_ERR_INVALID_ARG,
          "format out of range");
    CHECK(es_chat_render(ES_CHAT_CHATML, two, 2, true, NULL) == ES_ERR_INVALID_ARG, "NULL out");
    CHECK(out == NULL, "out untouched on failure");
    /* the model's own BOS/EOS texts */
    es_chat_options opt = es_chat_default_options();
    opt.bos_text = "<B>";
    opt.eos_text = "<E>";
    const es_chat_msg conv3[] = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
    CHECK(es_chat_render_ex(ES_CHAT_LLAMA2, conv3, 3, &opt, &out) == ES_OK &&
              strcmp(out, "<B>[INST] a [/INST] b <E><B>[INST] c [/INST]") == 0,
          "llama2 with the model's bos/eos: %s", out ? out : "(null)");
    free(out);
    out = NULL;
    /* Python whitespace: U+2028 and \x1c are stripped, U+200B (zero width space) is not */
    const es_chat_msg ws[] = {{"user", "\xe2\x80\xa8\x1c x \xe2\x80\x8b"}};
    CHECK(es_chat_render(ES_CHAT_GEMMA, ws, 1, false, &out) == ES_OK &&
              strcmp(out, "<bos><start_of_turn>user\nx \xe2\x80\x8b<end_of_turn>\n") == 0,
          "trim follows str.strip()");
    free(out);
    out = NULL;
    /* invalid UTF-8 is kept as is, never stripped */
    const es_chat_msg inv[] = {{"user", " \xff\x80 "}};
    CHECK(es_chat_render(ES_CHAT_GEMMA, inv, 1, false, &out) == ES_OK &&
              strcmp(out, "<bos><start_of_turn>user\n\xff\x80<end_of_turn>\n") == 0,
          "invalid UTF-8 survives trim");
    free(out);
}

/* Feeds `text` in pieces of `step` bytes; returns what was emitted (static). */
static const char *stream(es_stop *st, const char *text, size_t step, bool *stopped) {
    static char got[512];
    size_t n = 0, len = strlen(text);
    *stopped = false;
    es_stop_reset(st);
    for (size_t i = 0; i < len && !*stopped; i += step) {
        size_t k = len - i < step ? len - i : step;
        const char *e;
        size_t el;
        if (es_stop_feed(st, text + i, k, &e, &el, stopped) != ES_OK) return "(error)";
        if (n + el >= sizeof got) return "(overflow)";
        memcpy(got + n, e, el);
        n += el;
    }
    if (!*stopped) {
        const char *e;
        size_t el;
        es_stop_flush(st, &e, &el);
        memcpy(got + n, e, el);
        n += el;
    }
    got[n] = '\0';
    return got;
}

static void test_stop(void) {
    const char *stops[] = {"<|im_end|>", "", "\n\nUser:", "END"};
    es_stop *st = NULL;
    if (!CHECK(es_stop_create(stops, 4, &st) == ES_OK, "stop create")) return;
    static const struct {
        const char *text;
        const char *want;
        bool stopped;
        int which;
    } cases[] = {
        {"Hello there<|im_end|>garbage", "Hello there", true, 0},
        {"no stop here <|im_en", "no stop here <|im_en", false, -1},
        {"a\n\nUser: b", "a", true, 2},
        {"a\n\nUse", "a\n\nUse", false, -1},
        {"xEN<|im_end|>END", "xEN", true, 0},
        {"ENEND", "EN", true, 3},
        {"<|im_end|>", "", true, 0},
        {"", "", false, -1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t step = 1; step <= 7; step++) {
            bool stopped;
            const char *got = stream(st, cases[c].text, step, &stopped);
            CHECK(strcmp(got, cases[c].want) == 0 && stopped == cases[c].stopped &&
                      es_stop_which(st) == cases[c].which,
                  "stop case %zu step %zu: got \"%s\" stopped %d which %d", c, step, got, stopped,
                  es_stop_which(st));
        }
    }
    /* nothing beyond a partial stop string is ever released early */
    es_stop_reset(st);
    const char *e;
    size_t el;
    bool stopped;
    CHECK(es_stop_feed(st, "abc<|im", 7, &e, &el, &stopped) == ES_OK && el == 3 &&
              memcmp(e, "abc", 3) == 0 && !stopped,
          "held back '<|im' (released %zu)", el);
    CHECK(es_stop_feed(st, "_e", 2, &e, &el, &stopped) == ES_OK && el == 0 && !stopped,
          "still held");
    CHECK(es_stop_feed(st, "xyz", 3, &e, &el, &stopped) == ES_OK && el == 9 &&
              memcmp(e, "<|im_exyz", 9) == 0,
          "released when it cannot match (%zu)", el);
    CHECK(es_stop_feed(st, "E", 1, &e, &el, &stopped) == ES_OK && el == 0, "E held");
    CHECK(es_stop_feed(st, "ND more", 7, &e, &el, &stopped) == ES_OK && el == 0 && stopped &&
              es_stop_which(st) == 3,
          "END stops");
    CHECK(es_stop_feed(st, "after", 5, &e, &el, &stopped) == ES_OK && el == 0 && stopped,
          "nothing after a stop");
    es_stop_free(st);

    /* no stop strings: everything passes straight through */
    CHECK(es_stop_create(NULL, 0, &st) == ES_OK, "create empty");
    CHECK(es_stop_feed(st, "abc", 3, &e, &el, &stopped) == ES_OK && el == 3 && !stopped,
          "pass through");
    es_stop_free(st);
    const char *nulls[] = {NULL};
    CHECK(es_stop_create(nulls, 1, &st) == ES_ERR_INVALID_ARG, "NULL stop string refused");
    es_stop_free(NULL);
}

/* The formats without a chat_template of their own (Vicuna, Baichuan 2, Qwen v1): a
 * system + user + assistant + user conversation, the expected text derived by hand from
 * the cited source of each (chat.c), with and without the generation prompt. */
static void test_render_families(void) {
    static const es_chat_msg msgs[] = {{"system", "Be brief."},
                                       {"user", "Hello!"},
                                       {"assistant", "Hi!"},
                                       {"user", "How are you?"}};
    static const struct {
        es_chat_format fmt;
        const char *with_prompt, *without;
    } want[] = {
        /* FastChat vicuna_v1.1 (../shared/templates/lmsys-vicuna-7b-v1.5.txt): system + " ",
         * "USER: " q " ", "ASSISTANT: " a "</s>", pending "ASSISTANT:"; BOS written out */
        {ES_CHAT_VICUNA,
         "<s>Be brief. USER: Hello! ASSISTANT: Hi!</s>USER: How are you? ASSISTANT:",
         "<s>Be brief. USER: Hello! ASSISTANT: Hi!</s>USER: How are you? "},
        /* Baichuan 2 build_chat_input: system, 195 q, 196 a, 195 q, 196 */
        {ES_CHAT_BAICHUAN2,
         "Be brief.<reserved_106>Hello!<reserved_107>Hi!<reserved_106>How are you?<reserved_107>",
         "Be brief.<reserved_106>Hello!<reserved_107>Hi!<reserved_106>How are you?"},
        /* Qwen-7B-Chat make_context */
        {ES_CHAT_QWEN,
         "<|im_start|>system\nBe "
         "brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
         "Hi!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>system\nBe "
         "brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
         "Hi!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"},
        /* Yi-34B-Chat tokenizer_config.json (the generic ChatML loop): every message a
         * "<|im_start|>" role "\n" content "<|im_end|>\n" turn, no default system */
        {ES_CHAT_YI,
         "<|im_start|>system\nBe "
         "brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
         "Hi!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>system\nBe "
         "brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
         "Hi!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"},
        /* MiniCPM3-4B chat_template without tools: "<|im_start|>system\n" + system +
         * "<|im_end|>\n" (non-empty first system), then the loop_messages turns */
        {ES_CHAT_MINICPM3,
         "<|im_start|>system\nBe "
         "brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
         "Hi!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>system\nBe "
         "brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
         "Hi!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        for (int gp = 0; gp < 2; gp++) {
            char *out = NULL;
            const char *expect = gp ? want[i].with_prompt : want[i].without;
            es_status st = es_chat_render(want[i].fmt, msgs, 4, gp, &out);
            if (CHECK(st == ES_OK, "%s: %s", es_chat_format_name(want[i].fmt), es_last_error()) &&
                !CHECK(strcmp(out, expect) == 0, "%s (prompt %d): text differs",
                       es_chat_format_name(want[i].fmt), gp))
                show_diff(out, expect);
            free(out);
        }
    }
    /* default systems when the conversation has none */
    static const es_chat_msg user_only[] = {{"user", "Hi"}};
    char *out = NULL;
    CHECK(es_chat_render(ES_CHAT_VICUNA, user_only, 1, true, &out) == ES_OK &&
              strcmp(out, "<s>A chat between a curious user and an artificial intelligence "
                          "assistant. The assistant "
                          "gives helpful, detailed, and polite answers to the user's questions. "
                          "USER: Hi ASSISTANT:") == 0,
          "vicuna default system: %s", out ? out : "(null)");
    free(out);
    out = NULL;
    CHECK(es_chat_render(ES_CHAT_QWEN, user_only, 1, true, &out) == ES_OK &&
              strcmp(out, "<|im_start|>system\nYou are a helpful "
                          "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                          "<|im_start|>assistant\n") == 0,
          "qwen default system: %s", out ? out : "(null)");
    free(out);
    /* Yi and MiniCPM3 have no default system; an empty first system message is a turn
     * in Yi's loop and nothing in MiniCPM3's ("if system_message or tools"), while a
     * later empty system message is a turn in both */
    static const es_chat_msg empty_sys[] = {{"system", ""}, {"user", "Hi"}, {"system", ""}};
    static const struct {
        es_chat_format fmt;
        const es_chat_msg *msgs;
        size_t n;
        const char *want;
    } edge[] = {
        {ES_CHAT_YI, user_only, 1, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
        {ES_CHAT_MINICPM3, user_only, 1, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
        {ES_CHAT_YI, empty_sys, 3,
         "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>system\n<|im_"
         "end|>\n"
         "<|im_start|>assistant\n"},
        {ES_CHAT_MINICPM3, empty_sys, 3,
         "<|im_start|>user\nHi<|im_end|>\n<|im_start|>system\n<|im_end|>\n<|im_start|>assistant\n"},
    };
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        out = NULL;
        es_status st = es_chat_render(edge[i].fmt, edge[i].msgs, edge[i].n, true, &out);
        if (CHECK(st == ES_OK, "%s edge %zu: %s", es_chat_format_name(edge[i].fmt), i,
                  es_last_error()) &&
            !CHECK(strcmp(out, edge[i].want) == 0, "%s edge %zu: text differs",
                   es_chat_format_name(edge[i].fmt), i))
            show_diff(out, edge[i].want);
        free(out);
    }
    CHECK(!es_chat_includes_bos(ES_CHAT_YI) && !es_chat_includes_bos(ES_CHAT_MINICPM3),
          "yi/minicpm3: no BOS text");
    /* names, end of turn, detection from template text */
    es_chat_format f;
    CHECK(es_chat_parse_name("vicuna", &f) == ES_OK && f == ES_CHAT_VICUNA, "name vicuna");
    CHECK(es_chat_parse_name("baichuan2", &f) == ES_OK && f == ES_CHAT_BAICHUAN2, "name baichuan2");
    CHECK(es_chat_parse_name("qwen", &f) == ES_OK && f == ES_CHAT_QWEN, "name qwen");
    CHECK(strcmp(es_chat_end_of_turn(ES_CHAT_QWEN), "<|im_end|>") == 0, "qwen end of turn");
    CHECK(es_chat_parse_name("yi", &f) == ES_OK && f == ES_CHAT_YI, "name yi");
    CHECK(es_chat_parse_name("minicpm3", &f) == ES_OK && f == ES_CHAT_MINICPM3, "name minicpm3");
    CHECK(strcmp(es_chat_end_of_turn(ES_CHAT_YI), "<|im_end|>") == 0, "yi end of turn");
    CHECK(strcmp(es_chat_end_of_turn(ES_CHAT_MINICPM3), "<|im_end|>") == 0, "minicpm3 end of turn");
    /* 01-ai/Yi-34B-Chat tokenizer_config.json chat_template (as api-for-open-llm quotes it)
     * and the same loop without spaces, as transformers' default ChatML template writes it */
    CHECK(es_chat_detect(
              "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
              "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt "
              "%}{{ '<|im_start|>assistant\\n' }}{% endif %}") == ES_CHAT_YI,
          "detect yi");
    CHECK(es_chat_detect(
              "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
              "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt "
              "%}{{ '<|im_start|>assistant\n' }}{% endif %}") == ES_CHAT_YI,
          "detect yi (newlines)");
    /* the same loop after a bos_token, or with a default system, writes more: not yi */
    CHECK(
        es_chat_detect(
            "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
            "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt "
            "%}{{ '<|im_start|>assistant\n' }}{% endif %}") == ES_CHAT_UNKNOWN,
        "bos_token + ChatML loop is unknown");
    /* the end of MiniCPM3-4B's chat_template (gorilla bfcl minicpm_fc.py quotes it whole) */
    CHECK(es_chat_detect(
              "{%- if messages[0]['role'] == 'system' %}\n  {%- set loop_messages = messages[1:] "
              "%}\n  {%- set "
              "system_message = messages[0]['content'] %}\n{%- else %}\n  {%- set loop_messages = "
              "messages %}\n  "
              "{%- set system_message = '' %}\n{%- endif %}\n{{- '<|im_start|>system\\n' + "
              "system_message if "
              "system_message or tools }}\n{{- '<|im_end|>\\n' if system_message or tools }}\n{%- "
              "for message in "
              "loop_messages %}\n  {%- set content = message.content %}\n  {%- if message.role == "
              "'assistant' and "
              "message.tool_calls %}\n    {{- '<|tool_call_start|>\\n```python\\n' }}\n  {%- elif "
              "message.role == "
              "'assistant' and message.thought %}\n    {{- '<|im_start|>' + message.role + '\\n' + "
              "'<|thought_start|>\\n' + message.thought + '\\n<|thought_end|>\\n' + content + "
              "'<|im_end|>\\n' "
              "}}\n  {%- else %}\n    {{- '<|im_start|>' + message.role + '\\n' + content + "
              "'<|im_end|>\\n' }}\n  "
              "{%- endif %}\n{%- endfor %}\n\n{%- if add_generation_prompt %}\n  {{- "
              "'<|im_start|>assistant\\n' "
              "}}\n{%- endif %}") == ES_CHAT_MINICPM3,
          "detect minicpm3");
    CHECK(es_chat_detect("{{ '<reserved_106>' + m['content'] + '<reserved_107>' }}") ==
              ES_CHAT_BAICHUAN2,
          "detect baichuan2");
    CHECK(es_chat_detect(
              "{% for m in messages %}{{ 'USER: ' + m['content'] + ' ASSISTANT:' }}{% endfor %}") ==
              ES_CHAT_VICUNA,
          "detect vicuna");
    CHECK(es_chat_detect("{% if loop.first and messages[0]['role'] != 'system' %}{{ "
                         "'<|im_start|>system\\nYou are "
                         "a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
                         "message['role']}}") == ES_CHAT_QWEN,
          "detect qwen");
}

/* es_chat_detect_model: the fixtures carry no tokenizer.chat_template, so the format
 * comes from general.architecture (qwen3moe: Qwen3's template, the Qwen3-MoE GGUFs'). */
static void test_detect_model(void) {
    CHECK(es_chat_detect_model(NULL) == ES_CHAT_NONE, "detect_model NULL");
    if (!es_test_shared()) {
        printf("detect_model: ../shared absent, fixtures not checked\n");
        return;
    }
    static const struct {
        const char *file;
        es_chat_format want;
    } fx[] = {
        {"fixtures/qwen.f16.gguf", ES_CHAT_QWEN},
        {"fixtures/baichuan.f16.gguf", ES_CHAT_BAICHUAN2},
        {"fixtures/minicpm3.f16.gguf", ES_CHAT_MINICPM3},
        {"fixtures/qwen3moe.f16.gguf", ES_CHAT_QWEN3},
        {"fixtures/qwen3.f16.gguf", ES_CHAT_QWEN3},
        {"fixtures/llama.f16.gguf", ES_CHAT_NONE},
    };
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        es_model *m = NULL;
        const char *path = es_test_shared_path(fx[i].file);
        if (!CHECK(es_model_load(path, NULL, &m) == ES_OK, "load %s: %s", fx[i].file,
                   es_last_error()))
            continue;
        CHECK(es_model_chat_template(m) == NULL, "%s: has no chat template", fx[i].file);
        es_chat_format got = es_chat_detect_model(m);
        CHECK(got == fx[i].want, "detect_model %s: got %s want %s", fx[i].file,
              es_chat_format_name(got), es_chat_format_name(fx[i].want));
        es_model_free(m);
    }
}

/* Qwen3-MoE (Qwen3-30B-A3B): its GGUF carries the Qwen3 chat template; the Qwen3 file
 * detects as qwen3 and renders as Qwen 3 (the same checks as test_render_cases' qwen3). */
static void test_qwen3moe_template(void) {
    if (!es_test_shared()) return;
    char *text = es_test_read_file(es_test_shared_path("templates/Qwen-Qwen3-0.6B.jinja"), NULL);
    if (!CHECK(text != NULL, "read the qwen3 template")) return;
    es_chat_format f = es_chat_detect(text);
    CHECK(f == ES_CHAT_QWEN3, "qwen3moe template: got %s", es_chat_format_name(f));
    static const es_chat_msg msgs[] = {{"system", "Be brief."}, {"user", "Hello!"}};
    char *out = NULL;
    const char *want =
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
        "<|im_start|>assistant\n";
    if (CHECK(es_chat_render(f, msgs, 2, true, &out) == ES_OK, "render qwen3moe: %s",
              es_last_error()) &&
        !CHECK(strcmp(out, want) == 0, "qwen3moe render differs"))
        show_diff(out, want);
    free(out);
    free(text);
}

int main(void) {
    test_render_cases();
    test_detect();
    test_names();
    test_render_misc();
    test_render_families();
    test_detect_model();
    test_qwen3moe_template();
    test_stop();
    return es_test_finish();
}
