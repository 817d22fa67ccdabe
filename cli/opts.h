/*
 * opts.h — the CLI's options as data (after llama.cpp's common/arg.cpp): every option
 * is declared once, in a table, with its names, value kind, range, help text and where
 * its value goes; the parser and the --help printer both read those tables, so a flag
 * has the same name, range and message in every command that takes it.
 *
 * A command is a cli_command: its synopsis and text, the size of its options struct,
 * and the option groups it takes, each at an offset in that struct. The shared groups
 * (runtime, sampling, generation length, chat, steering) are declared once in opts.c;
 * a command's own options are one more group in its cmd_NAME.c.
 *
 * cli_parse never prints and never exits: it returns a status and leaves a message.
 * cli_opts_parse is the command-side wrapper that prints help or the error and says
 * which exit code to return.
 */
#ifndef ES_CLI_OPTS_H
#define ES_CLI_OPTS_H

#include "cli.h"

#include <stddef.h>
#include <stdint.h>

typedef enum cli_opt_kind {
    CLI_FLAG,     /* no value: *(bool *) = true */
    CLI_INT,      /* *(int *): an integer in [lo, hi] */
    CLI_LONG,     /* *(long *): an integer in [lo, hi] */
    CLI_U64,      /* *(uint64_t *): any integer in 0..UINT64_MAX (lo, hi unused) */
    CLI_FLOAT,    /* *(float *): a finite number in [lo, hi] */
    CLI_DOUBLE,   /* *(double *): a finite number in [lo, hi] */
    CLI_STR,      /* *(const char **): the word itself, borrowed from argv */
    CLI_PATH,     /* as CLI_STR, a file or folder */
    CLI_CHOICE,   /* *(int *): the index i whose choice(i) is the word */
    CLI_INT_LIST, /* *(cli_int_list *): "1,5,9", each in [lo, hi]; malloc'ed, see cli_opts_free */
    CLI_STRS,     /* *(cli_strs *): repeatable, each word appended (at most CLI_MAX_STRS) */
    CLI_CUSTOM,   /* fn decides: takes the words after the flag, returns how many it used */
} cli_opt_kind;

#define CLI_MAX_STRS 16

typedef struct cli_int_list {
    int32_t *v; /* [n] (malloc'ed; NULL when not given) */
    int n;
} cli_int_list;

typedef struct cli_strs {
    const char *v[CLI_MAX_STRS]; /* [n] borrowed from argv */
    int n;
} cli_strs;

typedef struct cli_opt cli_opt;

/* A CLI_CUSTOM option: vals[0..n_vals) are the words after the flag (n_vals may be 0).
 * Returns how many it consumed (>= 0), or -1 after writing a message (without the
 * "emosteer CMD: " prefix) into err[cap]. dest points at the option's offset. */
typedef int (*cli_opt_fn)(const cli_opt *opt, const char *flag, void *dest, char *const *vals,
                          int n_vals, char *err, size_t cap);

/* Option flags */
#define CLI_SHOW_DEFAULT 1u /* --help appends "(default X)" read from the destination */
#define CLI_DEFAULT_CTX                                                                            \
    2u /* an int where 0 is the library's default context length: --help                           \
          shows "(default: the model's trained length, at most 4096)" */

struct cli_opt {
    const char *short_name; /* "-t", or NULL */
    const char *long_name;  /* "--threads" (never NULL) */
    const char *metavar;    /* "N"; NULL: from the kind ("A|B" for a choice) */
    cli_opt_kind kind;
    double lo, hi; /* numbers and int lists: the accepted range */
    size_t offset; /* destination: offset in the group's struct */
    const char *help;
    const char *(*choice)(int i); /* CLI_CHOICE: the i-th name, NULL past the last */
    cli_opt_fn fn;                /* CLI_CUSTOM */
    unsigned flags;               /* CLI_SHOW_DEFAULT */
    unsigned tag;                 /* a bit a command may leave out (cli_group_use.skip) */
};

typedef struct cli_opt_group {
    const char *title; /* "runtime"; consecutive groups with one title print as one */
    const cli_opt *opts;
    int n_opts;
} cli_opt_group;

/* A group as a command takes it: its struct lives at `offset` in the command's
 * options struct; options whose tag is in `skip` are not taken. */
typedef struct cli_group_use {
    const cli_opt_group *group;
    size_t offset;
    unsigned skip;
} cli_group_use;

typedef struct cli_command {
    const char *name;         /* "generate" */
    const char *synopsis;     /* "[-m MODEL] -p TEXT [options]" (more lines: "\n       ...") */
    const char *about;        /* a paragraph, or NULL */
    const char *epilog;       /* printed after the options, or NULL */
    size_t opts_size;         /* sizeof the command's options struct */
    void (*init)(void *opts); /* sets the defaults (the struct is zeroed first) */
    const cli_group_use *groups;
    int n_groups;
    int max_positional; /* words that are not options (0: none allowed) */
} cli_command;

typedef enum cli_parse_status {
    CLI_PARSE_OK = 0,
    CLI_PARSE_HELP,  /* -h or --help was given */
    CLI_PARSE_ERROR, /* usage error: see msg */
} cli_parse_status;

typedef struct cli_parse_result {
    char msg[512];      /* the usage error, without the "emosteer CMD: " prefix */
    const char *pos[4]; /* [n_pos] positional words, borrowed from argv */
    int n_pos;
} cli_parse_result;

/* Zeroes opts (cmd->opts_size bytes) and applies cmd->init. */
void cli_opts_init(const cli_command *cmd, void *opts);
/* Parses argv[1..argc) (argv[0] is the command name) into opts, which must have been
 * set by cli_opts_init. Never prints, never exits. After an error opts may be partly
 * filled; cli_opts_free releases what the parser allocated in any case. */
cli_parse_status cli_parse(const cli_command *cmd, void *opts, int argc, char *const *argv,
                           cli_parse_result *res);
/* Frees what the parser allocated in opts (the int lists) and zeroes those fields. */
void cli_opts_free(const cli_command *cmd, void *opts);
/* Prints "usage: emosteer NAME SYNOPSIS", the about text, every group's options with
 * their ranges and defaults (read from opts), and the epilog. */
void cli_print_help(const cli_command *cmd, const void *opts, FILE *f);

/* What a command calls: cli_opts_init + cli_parse, then on --help prints the help to
 * stdout and returns ES_EXIT_OK, on an error prints "emosteer NAME: MSG" and the
 * "Try ..." line to stderr and returns ES_EXIT_USAGE; -1 to go on. *positional (may be
 * NULL) gets the positional words. */
int cli_opts_parse(const cli_command *cmd, void *opts, int argc, char **argv,
                   cli_parse_result *positional);

/* ---- the shared groups (opts.c) ---- */

/* runtime: -m -t -c --kv-type --numerics --batch-invariant --batch. Tags to leave some out: */
#define CLI_RT_MODEL 1u      /* -m */
#define CLI_RT_THREADS 2u    /* -t */
#define CLI_RT_CTX 4u        /* -c */
#define CLI_RT_KV 8u         /* --kv-type, --numerics */
#define CLI_RT_BATCH 16u     /* --batch */
#define CLI_RT_INVARIANT 32u /* --batch-invariant */
#define CLI_RT_ALL                                                                                 \
    (CLI_RT_MODEL | CLI_RT_THREADS | CLI_RT_CTX | CLI_RT_KV | CLI_RT_BATCH | CLI_RT_INVARIANT)

typedef struct cli_runtime_opts {
    const char *model;    /* -m (default cli_default_model()) */
    int n_threads;        /* -t, 0 = the library's default */
    int n_ctx;            /* -c; 0 = the library's default (the trained length, at most 4096) */
    int kv_type;          /* --kv-type (es_kv_type) */
    int numerics;         /* --numerics (es_numerics) */
    bool batch_invariant; /* --batch-invariant */
    int batch;            /* --batch: sequences at once (default 16) */
    bool check_finite;    /* --check-finite: es_model_params.check_finite */
} cli_runtime_opts;

extern const cli_opt_group cli_runtime_group;
/* --check-finite, a group of its own (titled "runtime") for the commands that pass it
 * to es_model_load: take it at the offset of their cli_runtime_opts. */
extern const cli_opt_group cli_check_finite_group;
/* model = cli_default_model(), n_ctx = 0 (the library's default), batch = 16, the
 * library's kv and numerics. */
void cli_runtime_init(cli_runtime_opts *rt);
/* Copies -t (when given), --kv-type and --numerics into cp (n_ctx and n_batch are the
 * command's to decide). */
void cli_runtime_apply(const cli_runtime_opts *rt, es_context_params *cp);
/* The positions a context made with -c n_ctx holds (n_ctx, or for 0 the library's
 * default). Prints "emosteer CMD: warning: -c N is above the M positions the model was
 * trained for; quality degrades past them" to stderr when n_ctx > the trained length. */
int cli_runtime_ctx(const char *cmd, int n_ctx, const es_model *model);

/* sampling: --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n
 * --presence-penalty --frequency-penalty -s/--seed, into an es_sampler_params. */
extern const cli_opt_group cli_sampling_group;
/* generation length: -n/--n-predict into a long (1..1000000), printed under sampling. */
extern const cli_opt_group cli_n_predict_group;

/* chat: --chat, -sys/--system, --chat-template (a name es_chat_parse_name knows). */
#define CLI_CHAT_FLAG 1u   /* --chat */
#define CLI_CHAT_SYSTEM 2u /* -sys/--system */
typedef struct cli_chat_opts {
    bool chat;             /* --chat */
    const char *system;    /* -sys */
    const char *tmpl_name; /* --chat-template, NULL = the model's own */
} cli_chat_opts;
extern const cli_opt_group cli_chat_group;

/* steering: the struct is cli_steer_opts (steer_opts.h). Tags: */
#define CLI_STEER_SPEC 1u /* --steer */
#define CLI_STEER_CV 2u   /* --control-vector, -scaled, -layer-range */
extern const cli_opt_group cli_steer_group;

/* Choice lists shared by several tables (NULL past the last name). */
const char *cli_hook_choice(int i);

/* Each command's table, defined in its cli/cmd_NAME.c. */
extern const cli_command cli_info_cmd, cli_generate_cmd, cli_chat_cmd, cli_extract_cmd,
    cli_eval_cmd, cli_tokenize_cmd, cli_perplexity_cmd, cli_bench_cmd, cli_activations_cmd,
    cli_random_model_cmd;
/* All of them, for the fuzz target (main.c). */
extern const cli_command *const cli_all_commands[];
extern const int cli_n_commands;

#endif
