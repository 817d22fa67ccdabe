/*
 * opts.c — the option parser, the --help printer, and the shared option groups
 * (runtime, sampling, -n, chat, steering), each declared once. See opts.h.
 */
#include "opts.h"
#include "steer_opts.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define N_OPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- value descriptions and errors ------------------------------------------------- */

static void fmt_num(char *buf, size_t cap, double v, bool integer) {
    if (integer)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%g", v);
}

static bool is_integer_kind(cli_opt_kind k) {
    return k == CLI_INT || k == CLI_LONG || k == CLI_INT_LIST;
}

/* "an integer in 1..1000000", "one of f32, f16", ... */
static void describe(const cli_opt *o, char *buf, size_t cap) {
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->lo, is_integer_kind(o->kind));
    fmt_num(hi, sizeof hi, o->hi, is_integer_kind(o->kind));
    switch (o->kind) {
    case CLI_INT:
    case CLI_LONG: snprintf(buf, cap, "an integer in %s..%s", lo, hi); break;
    case CLI_U64: snprintf(buf, cap, "an integer in 0..%" PRIu64, UINT64_MAX); break;
    case CLI_FLOAT:
    case CLI_DOUBLE: snprintf(buf, cap, "a number in %s..%s", lo, hi); break;
    case CLI_INT_LIST:
        snprintf(buf, cap, "a comma-separated list of integers in %s..%s", lo, hi);
        break;
    case CLI_CHOICE: {
        size_t at = (size_t)snprintf(buf, cap, "one of");
        for (int i = 0; o->choice(i) && at < cap; i++)
            at += (size_t)snprintf(buf + at, cap - at, "%s %s", i ? "," : "", o->choice(i));
        break;
    }
    case CLI_PATH: snprintf(buf, cap, "a path"); break;
    default: snprintf(buf, cap, "a value"); break;
    }
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* "-n wants an integer in 1..1000000, got 'x'" */
static int fail_value(const cli_opt *o, const char *flag, const char *v, char *err, size_t cap) {
    char what[256];
    describe(o, what, sizeof what);
    return fail(err, cap, "%s wants %s, got '%s'", flag, what, v);
}

static int fail_too_large(const cli_opt *o, const char *flag, const char *v, char *err,
                          size_t cap) {
    char hi[32];
    fmt_num(hi, sizeof hi, o->hi, is_integer_kind(o->kind));
    return fail(err, cap, "%s %s is too large (at most %s)", flag, v, hi);
}

/* ---- value parsers: whole words only ---------------------------------------------- */

/* 0 ok, -1 junk, 1 above hi, 2 below lo */
static int parse_ll(const char *s, double lo, double hi, long long *out) {
    if (!*s || (s[0] != '-' && s[0] != '+' && (s[0] < '0' || s[0] > '9'))) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end) return -1;
    if (errno == ERANGE) return v > 0 ? 1 : 2;
    if ((double)v > hi) return 1;
    if ((double)v < lo) return 2;
    *out = v;
    return 0;
}

static int parse_d(const char *s, double lo, double hi, double *out) {
    if (!*s || s[0] == ' ' || s[0] == '\t') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    if (v > hi) return 1;
    if (v < lo) return 2;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
    if (s[0] < '0' || s[0] > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return -1;
    if (errno == ERANGE) return 1;
    *out = (uint64_t)v;
    return 0;
}

/* Stores the value word v of option o at dest. Returns 0, or -1 with err set. */
static int set_value(const cli_opt *o, const char *flag, void *dest, const char *v, char *err,
                     size_t cap) {
    long long l = 0;
    double d = 0;
    int r = 0;
    switch (o->kind) {
    case CLI_INT:
    case CLI_LONG:
        r = parse_ll(v, o->lo, o->hi, &l);
        if (r == 0 && o->kind == CLI_INT)
            *(int *)dest = (int)l;
        else if (r == 0)
            *(long *)dest = (long)l;
        break;
    case CLI_U64: {
        uint64_t u;
        r = parse_u64(v, &u);
        if (r == 0) *(uint64_t *)dest = u;
        if (r == 1)
            return fail(err, cap, "%s %s is too large (at most %" PRIu64 ")", flag, v, UINT64_MAX);
        break;
    }
    case CLI_FLOAT:
    case CLI_DOUBLE:
        r = parse_d(v, o->lo, o->hi, &d);
        if (r == 0 && o->kind == CLI_FLOAT)
            *(float *)dest = (float)d;
        else if (r == 0)
            *(double *)dest = d;
        break;
    case CLI_STR:
    case CLI_PATH: *(const char **)dest = v; break;
    case CLI_CHOICE: {
        int i = 0;
        while (o->choice(i) && strcmp(o->choice(i), v) != 0)
            i++;
        if (!o->choice(i)) return fail_value(o, flag, v, err, cap);
        *(int *)dest = i;
        break;
    }
    case CLI_INT_LIST: {
        cli_int_list *list = dest;
        int32_t *vals = NULL;
        int n = 0;
        if (!cli_parse_int_list(v, &vals, &n)) return fail_value(o, flag, v, err, cap);
        for (int k = 0; k < n; k++)
            if (vals[k] < o->lo || vals[k] > o->hi) {
                free(vals);
                return fail_value(o, flag, v, err, cap);
            }
        free(list->v);
        list->v = vals;
        list->n = n;
        break;
    }
    case CLI_STRS: {
        cli_strs *s = dest;
        if (s->n == CLI_MAX_STRS)
            return fail(err, cap, "%s is given more than %d times", flag, CLI_MAX_STRS);
        s->v[s->n++] = v;
        break;
    }
    default: return fail(err, cap, "%s: bad option table", flag);
    }
    if (r == 1) return fail_too_large(o, flag, v, err, cap);
    if (r != 0) return fail_value(o, flag, v, err, cap);
    return 0;
}

/* ---- the parser ---------------------------------------------------------------------- */

void cli_opts_init(const cli_command *cmd, void *opts) {
    memset(opts, 0, cmd->opts_size);
    if (cmd->init) cmd->init(opts);
}

/* The option named `a` among the command's groups, with its group's base. */
static const cli_opt *find(const cli_command *cmd, void *opts, const char *a, void **base) {
    for (int g = 0; g < cmd->n_groups; g++) {
        const cli_group_use *u = &cmd->groups[g];
        for (int k = 0; k < u->group->n_opts; k++) {
            const cli_opt *o = &u->group->opts[k];
            if (o->tag & u->skip) continue;
            if (strcmp(a, o->long_name) == 0 || (o->short_name && strcmp(a, o->short_name) == 0)) {
                *base = (char *)opts + u->offset;
                return o;
            }
        }
    }
    return NULL;
}

cli_parse_status cli_parse(const cli_command *cmd, void *opts, int argc, char *const *argv,
                           cli_parse_result *res) {
    res->msg[0] = '\0';
    res->n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return CLI_PARSE_HELP;
        void *base = NULL;
        const cli_opt *o = find(cmd, opts, a, &base);
        if (!o) {
            if (a[0] == '-' && a[1]) {
                fail(res->msg, sizeof res->msg, "unknown option '%s'", a);
                return CLI_PARSE_ERROR;
            }
            if (res->n_pos >= cmd->max_positional ||
                res->n_pos >= (int)(sizeof res->pos / sizeof res->pos[0])) {
                fail(res->msg, sizeof res->msg, "unexpected argument '%s'", a);
                return CLI_PARSE_ERROR;
            }
            res->pos[res->n_pos++] = a;
            continue;
        }
        void *dest = (char *)base + o->offset;
        if (o->kind == CLI_FLAG) {
            *(bool *)dest = true;
            continue;
        }
        if (o->kind == CLI_CUSTOM) {
            int used = o->fn(o, a, dest, argv + i + 1, argc - i - 1, res->msg, sizeof res->msg);
            if (used < 0) return CLI_PARSE_ERROR;
            i += used;
            continue;
        }
        if (i + 1 >= argc) {
            char what[256];
            describe(o, what, sizeof what);
            fail(res->msg, sizeof res->msg, "%s needs a value: %s", a, what);
            return CLI_PARSE_ERROR;
        }
        if (set_value(o, a, dest, argv[++i], res->msg, sizeof res->msg) != 0)
            return CLI_PARSE_ERROR;
    }
    return CLI_PARSE_OK;
}

void cli_opts_free(const cli_command *cmd, void *opts) {
    for (int g = 0; g < cmd->n_groups; g++) {
        const cli_group_use *u = &cmd->groups[g];
        for (int k = 0; k < u->group->n_opts; k++) {
            const cli_opt *o = &u->group->opts[k];
            if (o->kind != CLI_INT_LIST || (o->tag & u->skip)) continue;
            cli_int_list *l = (cli_int_list *)((char *)opts + u->offset + o->offset);
            free(l->v);
            l->v = NULL;
            l->n = 0;
        }
    }
}

int cli_opts_parse(const cli_command *cmd, void *opts, int argc, char **argv,
                   cli_parse_result *positional) {
    cli_parse_result local;
    cli_parse_result *res = positional ? positional : &local;
    cli_opts_init(cmd, opts);
    cli_parse_status st = cli_parse(cmd, opts, argc, argv, res);
    if (st == CLI_PARSE_HELP) {
        cli_print_help(cmd, opts, stdout);
        return ES_EXIT_OK;
    }
    if (st == CLI_PARSE_ERROR) return cli_usage_error(cmd->name, "%s", res->msg);
    return -1;
}

/* ---- --help ---------------------------------------------------------------------------- */

#define HELP_COL 30

/* The default shown in --help, from the destination; false if there is none to show. */
static bool default_text(const cli_opt *o, const void *dest, char *buf, size_t cap) {
    switch (o->kind) {
    case CLI_INT:
        if ((o->flags & CLI_DEFAULT_CTX) && *(const int *)dest == 0)
            snprintf(buf, cap, ": the model's trained length, at most %d", ES_CTX_DEFAULT_MAX);
        else
            snprintf(buf, cap, " %d", *(const int *)dest);
        return true;
    case CLI_LONG: snprintf(buf, cap, " %ld", *(const long *)dest); return true;
    case CLI_U64: snprintf(buf, cap, " %" PRIu64, *(const uint64_t *)dest); return true;
    case CLI_FLOAT: snprintf(buf, cap, " %g", (double)*(const float *)dest); return true;
    case CLI_DOUBLE: snprintf(buf, cap, " %g", *(const double *)dest); return true;
    case CLI_STR:
    case CLI_PATH:
        if (!*(const char *const *)dest) return false;
        snprintf(buf, cap, " %s", *(const char *const *)dest);
        return true;
    case CLI_CHOICE: {
        int i = *(const int *)dest;
        for (int k = 0; k <= i; k++)
            if (!o->choice(k)) return false;
        if (i < 0) return false;
        snprintf(buf, cap, " %s", o->choice(i));
        return true;
    }
    default: return false;
    }
}

static void print_opt(const cli_opt *o, const void *dest, FILE *f) {
    char left[256], meta[160];
    if (o->metavar)
        snprintf(meta, sizeof meta, "%s", o->metavar);
    else if (o->kind == CLI_CHOICE) {
        size_t at = 0;
        meta[0] = '\0';
        for (int i = 0; o->choice(i) && at < sizeof meta; i++)
            at += (size_t)snprintf(meta + at, sizeof meta - at, "%s%s", i ? "|" : "", o->choice(i));
    } else if (o->kind == CLI_FLAG)
        meta[0] = '\0';
    else
        snprintf(meta, sizeof meta, "%s",
                 is_integer_kind(o->kind) || o->kind == CLI_U64 ? "N" : "X");
    int n = snprintf(left, sizeof left, "  %s%s%s%s%s", o->short_name ? o->short_name : "",
                     o->short_name ? ", " : "", o->long_name, meta[0] ? " " : "", meta);
    fputs(left, f);
    if (n >= HELP_COL - 1)
        fprintf(f, "\n%*s", HELP_COL, "");
    else
        fprintf(f, "%*s", HELP_COL - n, "");
    /* the help text; continuation lines indented to the column */
    for (const char *p = o->help; *p; p++) {
        fputc(*p, f);
        if (*p == '\n') fprintf(f, "%*s", HELP_COL, "");
    }
    char lo[32], hi[32], def[512];
    fmt_num(lo, sizeof lo, o->lo, is_integer_kind(o->kind));
    fmt_num(hi, sizeof hi, o->hi, is_integer_kind(o->kind));
    if (o->kind == CLI_INT || o->kind == CLI_LONG || o->kind == CLI_FLOAT ||
        o->kind == CLI_DOUBLE || o->kind == CLI_INT_LIST)
        fprintf(f, " [%s..%s]", lo, hi);
    if ((o->flags & CLI_SHOW_DEFAULT) && default_text(o, dest, def, sizeof def))
        fprintf(f, " (default%s)", def);
    fputc('\n', f);
}

void cli_print_help(const cli_command *cmd, const void *opts, FILE *f) {
    fprintf(f, "usage: emosteer %s %s\n", cmd->name, cmd->synopsis);
    if (cmd->about) fprintf(f, "\n%s\n", cmd->about);
    const char *title = NULL;
    for (int g = 0; g < cmd->n_groups; g++) {
        const cli_group_use *u = &cmd->groups[g];
        if (!title || strcmp(title, u->group->title) != 0) fprintf(f, "\n%s:\n", u->group->title);
        title = u->group->title;
        for (int k = 0; k < u->group->n_opts; k++) {
            const cli_opt *o = &u->group->opts[k];
            if (o->tag & u->skip) continue;
            print_opt(o, (const char *)opts + u->offset + o->offset, f);
        }
    }
    fprintf(f, "\n  -h, --help%*sthis help\n", HELP_COL - 12, "");
    if (cmd->epilog) fprintf(f, "\n%s\n", cmd->epilog);
}

/* ---- choices ----------------------------------------------------------------------------- */

const char *cli_hook_choice(int i) {
    return i >= 0 && i < ES_HOOK_COUNT ? es_hook_name((es_hook_point)i) : NULL;
}
static const char *kv_choice(int i) {
    return i == ES_KV_F32 || i == ES_KV_F16 ? es_kv_type_name((es_kv_type)i) : NULL;
}
static const char *numerics_choice(int i) {
    return i == ES_NUMERICS_FAST || i == ES_NUMERICS_LLAMACPP ? es_numerics_name((es_numerics)i)
                                                              : NULL;
}
static const char *positions_choice(int i) {
    return i >= 0 && i < ES_STEER_POS_COUNT ? es_steer_positions_name((es_steer_positions)i) : NULL;
}

/* ---- runtime ------------------------------------------------------------------------------ */

#define RT(f) offsetof(cli_runtime_opts, f)
static const cli_opt runtime_opts[] = {
    {"-m", "--model", "PATH", CLI_PATH, 0, 0, RT(model), "GGUF model", NULL, NULL, CLI_SHOW_DEFAULT,
     CLI_RT_MODEL},
    {"-t", "--threads", "N", CLI_INT, 1, 512, RT(n_threads),
     "worker threads (default: the CPU count, at most 8)", NULL, NULL, 0, CLI_RT_THREADS},
    {"-c", "--ctx-size", "N", CLI_INT, 8, 1 << 22, RT(n_ctx), "context length in tokens", NULL,
     NULL, CLI_SHOW_DEFAULT | CLI_DEFAULT_CTX, CLI_RT_CTX},
    {NULL, "--kv-type", NULL, CLI_CHOICE, 0, 0, RT(kv_type),
     "KV cache type: f32 exact, f16 half the memory with\nattention computed as llama.cpp does",
     kv_choice, NULL, CLI_SHOW_DEFAULT, CLI_RT_KV},
    {NULL, "--numerics", NULL, CLI_CHOICE, 0, 0, RT(numerics),
     "fast, or llamacpp: quantized sums in llama.cpp's order\neverywhere (with --kv-type f16: its "
     "logits; "
     "slower\nQ8_0 prompts on VNNI CPUs)",
     numerics_choice, NULL, CLI_SHOW_DEFAULT, CLI_RT_KV},
    {NULL, "--batch-invariant", NULL, CLI_FLAG, 0, 0, RT(batch_invariant),
     "every token's numbers independent of its batch, as in\n`serve` (slower prompts)", NULL, NULL,
     0, CLI_RT_INVARIANT},
    {NULL, "--batch", "B", CLI_INT, 1, 1024, RT(batch), "sequences generated at once", NULL, NULL,
     CLI_SHOW_DEFAULT, CLI_RT_BATCH},
};
const cli_opt_group cli_runtime_group = {"runtime", runtime_opts, N_OPTS(runtime_opts)};

static const cli_opt check_finite_opts[] = {
    {NULL, "--check-finite", NULL, CLI_FLAG, 0, 0, RT(check_finite),
     "scan the float weights for NaN/Inf at load (slow on big models)", NULL, NULL, 0, 0},
};
const cli_opt_group cli_check_finite_group = {"runtime", check_finite_opts,
                                              N_OPTS(check_finite_opts)};

void cli_runtime_init(cli_runtime_opts *rt) {
    es_context_params cp = es_context_default_params();
    rt->model = cli_default_model();
    rt->n_threads = 0;
    rt->n_ctx = 0;
    rt->kv_type = cp.kv_type;
    rt->numerics = cp.numerics;
    rt->batch = 16;
}

void cli_runtime_apply(const cli_runtime_opts *rt, es_context_params *cp) {
    if (rt->n_threads > 0) cp->n_threads = rt->n_threads;
    cp->kv_type = rt->kv_type;
    cp->numerics = rt->numerics;
    cp->batch_invariant = rt->batch_invariant;
}

int cli_runtime_ctx(const char *cmd, int n_ctx, const es_model *model) {
    es_model_info in;
    es_model_get_info(model, &in);
    if (n_ctx == 0) return ES_MIN(in.n_ctx_train, ES_CTX_DEFAULT_MAX);
    if (n_ctx > in.n_ctx_train)
        fprintf(stderr,
                "emosteer %s: warning: -c %d is above the %d positions the model was trained for; "
                "quality degrades "
                "past them\n",
                cmd, n_ctx, in.n_ctx_train);
    return n_ctx;
}

/* ---- sampling ------------------------------------------------------------------------------ */

#define SP(f) offsetof(es_sampler_params, f)
static const cli_opt sampling_opts[] = {
    {NULL, "--temp", "T", CLI_FLOAT, 0, 100, SP(temp), "temperature, 0 = greedy", NULL, NULL,
     CLI_SHOW_DEFAULT, 0},
    {NULL, "--top-k", "K", CLI_INT, 0, 1 << 30, SP(top_k), "keep the K most likely tokens, 0 = off",
     NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--top-p", "P", CLI_FLOAT, 0, 1, SP(top_p), "nucleus sampling mass, 1 = off", NULL, NULL,
     CLI_SHOW_DEFAULT, 0},
    {NULL, "--min-p", "P", CLI_FLOAT, 0, 1, SP(min_p), "drop tokens below P x the top probability",
     NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--repeat-penalty", "R", CLI_FLOAT, 1e-3, 100, SP(repeat_penalty),
     "penalise repeated tokens, 1 = off", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--repeat-last-n", "N", CLI_INT, 0, 1 << 20, SP(penalty_last_n),
     "how many recent tokens the penalties see", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--presence-penalty", "X", CLI_FLOAT, -100, 100, SP(presence_penalty),
     "presence penalty", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--frequency-penalty", "X", CLI_FLOAT, -100, 100, SP(frequency_penalty),
     "frequency penalty", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {"-s", "--seed", "S", CLI_U64, 0, 0, SP(seed), "random seed: the same seed gives the same text",
     NULL, NULL, CLI_SHOW_DEFAULT, 0},
};
const cli_opt_group cli_sampling_group = {"sampling", sampling_opts, N_OPTS(sampling_opts)};

static const cli_opt n_predict_opts[] = {
    {"-n", "--n-predict", "N", CLI_LONG, 1, 1000000, 0, "tokens to generate at most (per response)",
     NULL, NULL, CLI_SHOW_DEFAULT, 0},
};
const cli_opt_group cli_n_predict_group = {"sampling", n_predict_opts, 1};

/* ---- chat ------------------------------------------------------------------------------------ */

static int chat_template_fn(const cli_opt *o, const char *flag, void *dest, char *const *vals,
                            int n, char *err, size_t cap) {
    (void)o;
    char names[256];
    size_t at = 0;
    for (int f = 0; f < ES_CHAT_FORMAT_COUNT && at < sizeof names; f++)
        if (f != ES_CHAT_UNKNOWN)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", at ? ", " : "",
                                   es_chat_format_name((es_chat_format)f));
    if (n < 1) return fail(err, cap, "%s needs a value: one of %s", flag, names);
    es_chat_format fmt;
    if (es_chat_parse_name(vals[0], &fmt) != ES_OK) {
        return fail(err, cap, "%s wants one of %s, got '%s'", flag, names, vals[0]);
    }
    *(const char **)dest = vals[0];
    return 1;
}

#define CH(f) offsetof(cli_chat_opts, f)
static const cli_opt chat_opts[] = {
    {NULL, "--chat", NULL, CLI_FLAG, 0, 0, CH(chat),
     "treat the prompt as a user message in the model's chat format", NULL, NULL, 0, CLI_CHAT_FLAG},
    {"-sys", "--system", "TEXT", CLI_STR, 0, 0, CH(system), "system message (implies --chat)", NULL,
     NULL, 0, CLI_CHAT_SYSTEM},
    {NULL, "--chat-template", "NAME", CLI_CUSTOM, 0, 0, CH(tmpl_name),
     "chat format: llama3, llama3.0, chatml, qwen3, gemma, phi3,\nmistral, llama2, minicpm, none "
     "(default: the "
     "model's own;\nnone = base model)",
     NULL, chat_template_fn, 0, 0},
};
const cli_opt_group cli_chat_group = {"chat", chat_opts, N_OPTS(chat_opts)};

/* ---- steering -------------------------------------------------------------------------------- */

static bool parse_scale(const char *s, float *out) {
    double d;
    if (!cli_parse_float(s, -CLI_MAX_ALPHA, CLI_MAX_ALPHA, &d)) return false;
    *out = (float)d;
    return true;
}

static int layers_fn(const cli_opt *o, const char *flag, void *dest, char *const *vals, int n,
                     char *err, size_t cap) {
    (void)o;
    const char *want = "A-B or a list L,L,... of layers in 0..4095";
    if (n < 1) return fail(err, cap, "%s needs a value: %s", flag, want);
    if (!cli_steer_layers_valid(vals[0]))
        return fail(err, cap, "%s wants %s, got '%s'", flag, want, vals[0]);
    *(const char **)dest = vals[0];
    return 1;
}

/* --control-vector FILE and --control-vector-scaled FILE SCALE (or FILE:SCALE); dest is
 * the cli_steer_opts. */
static int cv_fn(const cli_opt *o, const char *flag, void *dest, char *const *vals, int n,
                 char *err, size_t cap) {
    cli_steer_opts *so = dest;
    bool scaled = strcmp(o->long_name, "--control-vector-scaled") == 0;
    if (n < 1)
        return fail(err, cap, "%s needs a value: %s", flag,
                    scaled ? "FILE SCALE (or FILE:SCALE)" : "a path");
    if (so->n_cv >= CLI_MAX_CV)
        return fail(err, cap, "%s: at most %d control vectors", flag, CLI_MAX_CV);
    cli_cv *cv = &so->cv[so->n_cv];
    cv->scale = 1.0f;
    if ((size_t)snprintf(cv->path, sizeof cv->path, "%s", vals[0]) >= sizeof cv->path)
        return fail(err, cap, "%s: the path '%.64s...' is too long", flag, vals[0]);
    int used = 1;
    if (scaled) {
        char *colon = strrchr(cv->path, ':');
        if (n >= 2 && parse_scale(vals[1], &cv->scale)) {
            used = 2;
        } else if (colon && parse_scale(colon + 1, &cv->scale)) {
            *colon = '\0';
        } else {
            return fail(
                err, cap,
                "%s wants FILE SCALE (or FILE:SCALE) with SCALE a number in -%g..%g, got '%s'",
                flag, CLI_MAX_ALPHA, CLI_MAX_ALPHA, n >= 2 ? vals[1] : vals[0]);
        }
    }
    so->n_cv++;
    return used;
}

static int cv_range_fn(const cli_opt *o, const char *flag, void *dest, char *const *vals, int n,
                       char *err, size_t cap) {
    (void)o;
    cli_steer_opts *so = dest;
    long lo, hi;
    if (n < 2)
        return fail(err, cap, "%s needs two values: layers A B with 0 <= A <= B <= 4095", flag);
    if (!cli_parse_int(vals[0], 0, ES_EV_MAX_LAYER - 1, &lo) ||
        !cli_parse_int(vals[1], 0, ES_EV_MAX_LAYER - 1, &hi) || hi < lo)
        return fail(err, cap, "%s wants two layers A B with 0 <= A <= B <= 4095, got '%s' '%s'",
                    flag, vals[0], vals[1]);
    so->cv_first = (int)lo;
    so->cv_last = (int)hi;
    return 2;
}

#define ST(f) offsetof(cli_steer_opts, f)
static const cli_opt steer_opts[] = {
    {NULL, "--ev", "FILE", CLI_PATH, 0, 0, ST(ev_path),
     "emotion vectors (emosteer .ev.gguf, llama.cpp control vector,\nor the seed paper's JSON)",
     NULL, NULL, 0, 0},
    {NULL, "--steer", "E=A[,E=A]", CLI_STR, 0, 0, ST(steer_spec),
     "emotions of --ev and their strengths, e.g. joy=1.5,anger=-0.5", NULL, NULL, 0,
     CLI_STEER_SPEC},
    {NULL, "--hook", NULL, CLI_CHOICE, 0, 0, ST(hook),
     "where to steer (default: the vectors' hook)", cli_hook_choice, NULL, 0, 0},
    {NULL, "--layers", "A-B|L,L,..", CLI_CUSTOM, 0, 0, ST(layers_spec),
     "layers to steer (default: the layers --ev recommends\n(emosteer.default_layers), else every "
     "layer it has)",
     NULL, layers_fn, 0, 0},
    {NULL, "--positions", NULL, CLI_CHOICE, 0, 0, ST(positions), "which positions are steered",
     positions_choice, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--preserve-norm", NULL, CLI_FLAG, 0, 0, ST(preserve_norm),
     "rescale each steered hidden state to its norm before steering", NULL, NULL, 0, 0},
    {NULL, "--control-vector", "FILE", CLI_CUSTOM, 0, 0, 0,
     "llama.cpp control vector (one direction), scale 1\n(repeatable; for a file of several "
     "emotions use\n--ev FILE --steer EMOTION=ALPHA)",
     NULL, cv_fn, 0, CLI_STEER_CV},
    {NULL, "--control-vector-scaled", "FILE SCALE", CLI_CUSTOM, 0, 0, 0,
     "llama.cpp control vector times SCALE (FILE:SCALE works too)", NULL, cv_fn, 0, CLI_STEER_CV},
    {NULL, "--control-vector-layer-range", "A B", CLI_CUSTOM, 0, 0, 0,
     "llama.cpp: steer only layers A..B", NULL, cv_range_fn, 0, CLI_STEER_CV},
};
const cli_opt_group cli_steer_group = {"steering", steer_opts, N_OPTS(steer_opts)};
