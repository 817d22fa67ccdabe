/* gen_util.h — what generate, chat, extract and eval share: the chat format of a
 * model, and turning a conversation or plain text into prompt tokens. */
#ifndef ES_CLI_GEN_UTIL_H
#define ES_CLI_GEN_UTIL_H

#include "cli.h"

/* Loads the model at path and its vocabulary (a model without one is an error, as every
 * text command needs it). Prints the error and returns ES_EXIT_FAIL, else ES_EXIT_OK. */
int cli_load_text_model(const char *path, const es_model_params *mp, es_model **model,
                        const es_vocab **vocab);

/* The judge model at path and a judge on it with n_threads (0 = the library's default)
 * workers. Prints the error and returns ES_EXIT_FAIL, else ES_EXIT_OK. */
int cli_judge_open(const char *path, int n_threads, es_model **model, es_judge **judge);

/* The --classifier (nli false) or --nli (nli true) scorer at path, with n_threads
 * (0 = every CPU) workers. Prints the error and returns ES_EXIT_FAIL, else ES_EXIT_OK. */
int cli_cls_scorer_open(const char *path, bool nli, const char *nli_template, int n_threads,
                        es_cls_scorer **out);

/* The chat format to use: `name` (from --chat-template) if given, else the model's
 * own template; ES_CHAT_UNKNOWN falls back to ES_CHAT_NONE with a note on stderr
 * (unless quiet). Returns an exit code. */
int cli_chat_format(const es_model *model, const char *name, bool quiet, es_chat_format *out);

/* Tokenizes a conversation rendered with fmt (for ES_CHAT_NONE: the contents joined
 * by newlines, with the vocabulary's BOS). *toks is malloc'ed. Returns an exit code. */
int cli_tokenize_chat(const es_vocab *vocab, es_chat_format fmt, const es_chat_msg *msgs, size_t n,
                      bool add_generation_prompt, int32_t **toks, int *n_toks);

/* The same without printing: an es_status, the message in es_last_error(). */
es_status cli_chat_tokens(const es_vocab *vocab, es_chat_format fmt, const es_chat_msg *msgs,
                          size_t n, bool add_generation_prompt, int32_t **toks, int *n_toks);

/* Tokenizes plain text (BOS as the vocabulary wants, specials parsed). */
int cli_tokenize_text(const es_vocab *vocab, const char *text, int32_t **toks, int *n_toks);

#endif
