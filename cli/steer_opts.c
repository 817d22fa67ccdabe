/*
 * steer_opts.c — the steering flags shared by generate, chat, activations and eval:
 *
 *   --ev FILE                 emotion vectors (emosteer GGUF, control vector, paper JSON)
 *   --steer joy=1.5,anger=-.5 emotions of --ev and their alphas
 *   --hook H                  attn_out | mlp_out | block_out (default: the vectors' own)
 *   --layers A-B | 1,3,5      layers to steer (default: the file's emosteer.default_layers,
 *                             else every layer of the vectors)
 *   --positions P             all | prompt | generated | last (default all)
 *   --preserve-norm           keep each steered hidden state's L2 norm
 *   --control-vector FILE             llama.cpp: add FILE's directions (scale 1)
 *   --control-vector-scaled FILE S    llama.cpp: add S times FILE's directions (FILE:S works too)
 *   --control-vector-layer-range A B  llama.cpp: only layers A..B (inclusive)
 */
#include "steer_opts.h"

#include <stdlib.h>
#include <string.h>

static bool parse_layers(const char *spec, es_steer_item *it, int32_t **list);

void cli_steer_init(cli_steer_opts *o) {
    memset(o, 0, sizeof *o);
    o->hook = -1;
    o->positions = ES_STEER_POS_ALL;
    o->cv_first = -1;
    o->cv_last = -1;
}

void cli_steer_help(FILE *f) {
    fprintf(f,
            "steering:\n"
            "  --ev FILE            emotion vectors (emosteer .ev.gguf, llama.cpp control vector,\n"
            "                       or the seed paper's JSON)\n"
            "  --steer E=A[,E=A]    emotions of --ev and their strengths, e.g. joy=1.5,anger=-0.5\n"
            "  --hook H             attn_out | mlp_out | block_out (default: the vectors' hook)\n"
            "  --layers A-B|L,L,..  layers to steer (default: the layers --ev recommends\n"
            "                       (emosteer.default_layers), else every layer it has)\n"
            "  --positions P        all | prompt | generated | last (default all)\n"
            "  --preserve-norm      rescale each steered hidden state to its norm before steering\n"
            "  --control-vector FILE                 llama.cpp control vector, scale 1\n"
            "  --control-vector-scaled FILE SCALE    llama.cpp control vector times SCALE\n"
            "                                        (FILE:SCALE is accepted too)\n"
            "  --control-vector-layer-range A B      llama.cpp: steer only layers A..B\n");
}

static bool parse_float(const char *s, float *out) {
    double d;
    if (!cli_parse_float(s, -1e6, 1e6, &d)) return false;
    *out = (float)d;
    return true;
}

int cli_steer_parse_arg(cli_steer_opts *o, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--preserve-norm")) {
        o->preserve_norm = true;
        return 1;
    }
    if (!strcmp(a, "--ev") || !strcmp(a, "--steer") || !strcmp(a, "--hook") ||
        !strcmp(a, "--layers") || !strcmp(a, "--positions") || !strcmp(a, "--control-vector") ||
        !strcmp(a, "--control-vector-scaled") || !strcmp(a, "--control-vector-layer-range")) {
        if (!v) {
            cli_usage_error(cmd, "%s needs a value", a);
            return -1;
        }
    } else {
        return 0;
    }
    (*i)++;
    if (!strcmp(a, "--ev")) {
        o->ev_path = v;
    } else if (!strcmp(a, "--steer")) {
        o->steer_spec = v;
    } else if (!strcmp(a, "--hook")) {
        es_hook_point hp;
        if (es_hook_parse(v, &hp) != ES_OK) {
            cli_usage_error(cmd, "--hook: %s", es_last_error());
            return -1;
        }
        o->hook = hp;
    } else if (!strcmp(a, "--layers")) {
        o->layers_spec = v;
    } else if (!strcmp(a, "--positions")) {
        es_steer_positions p;
        if (es_steer_positions_parse(v, &p) != ES_OK) {
            cli_usage_error(cmd, "--positions: %s", es_last_error());
            return -1;
        }
        o->positions = p;
    } else if (!strcmp(a, "--control-vector") || !strcmp(a, "--control-vector-scaled")) {
        if (o->n_cv >= CLI_MAX_CV) {
            cli_usage_error(cmd, "at most %d control vectors", CLI_MAX_CV);
            return -1;
        }
        cli_cv *cv = &o->cv[o->n_cv];
        cv->scale = 1.0f;
        snprintf(cv->path, sizeof cv->path, "%s", v);
        if (!strcmp(a, "--control-vector-scaled")) {
            /* FILE SCALE (llama.cpp) or FILE:SCALE */
            const char *w = *i + 1 < argc ? argv[*i + 1] : NULL;
            char *colon = strrchr(cv->path, ':');
            if (w && parse_float(w, &cv->scale)) {
                (*i)++;
            } else if (colon && parse_float(colon + 1, &cv->scale)) {
                *colon = '\0';
            } else {
                cli_usage_error(cmd, "--control-vector-scaled wants FILE SCALE (or FILE:SCALE), got '%s'", v);
                return -1;
            }
        }
        o->n_cv++;
    } else { /* --control-vector-layer-range A B */
        long lo, hi;
        const char *w = *i + 1 < argc ? argv[*i + 1] : NULL;
        if (!cli_parse_int(v, 0, ES_EV_MAX_LAYER - 1, &lo) || !w ||
            !cli_parse_int(w, 0, ES_EV_MAX_LAYER - 1, &hi) || hi < lo) {
            cli_usage_error(cmd, "--control-vector-layer-range wants two layers A <= B");
            return -1;
        }
        (*i)++;
        o->cv_first = (int)lo;
        o->cv_last = (int)hi;
    }
    return 1;
}

bool cli_steer_select_layers(const es_ev_set *ev, const char *spec, es_steer_item *it,
                             int32_t **list) {
    *list = NULL;
    if (spec) return parse_layers(spec, it, list);
    /* the file's recommended layers (emosteer.default_layers), else every layer */
    const int32_t *def = NULL;
    int n_def = es_ev_set_default_layers(ev, &def);
    if (n_def > 0) {
        it->layers = def;
        it->n_layers = n_def;
    }
    return true;
}

bool cli_steer_active(const cli_steer_opts *o) {
    return o->ev_path || o->steer_spec || o->n_cv > 0;
}

/* Parses "A-B" or "1,3,5" into an item's layer selection (list owned by *list). */
static bool parse_layers(const char *spec, es_steer_item *it, int32_t **list) {
    *list = NULL;
    long a, b;
    const char *dash = strchr(spec, '-');
    if (dash && dash != spec && !strchr(spec, ',')) {
        char lo[32];
        size_t n = (size_t)(dash - spec);
        if (n >= sizeof lo) return false;
        memcpy(lo, spec, n);
        lo[n] = '\0';
        if (!cli_parse_int(lo, 0, ES_EV_MAX_LAYER - 1, &a) ||
            !cli_parse_int(dash + 1, 0, ES_EV_MAX_LAYER - 1, &b) || b < a)
            return false;
        it->layer_first = (int)a;
        it->layer_last = (int)b;
        return true;
    }
    int n;
    if (!cli_parse_int_list(spec, list, &n)) return false;
    for (int k = 0; k < n; k++)
        if ((*list)[k] < 0 || (*list)[k] >= ES_EV_MAX_LAYER) return false;
    it->layers = *list;
    it->n_layers = n;
    return true;
}

int cli_steer_build(const cli_steer_opts *o, const char *cmd, es_steer_set **out) {
    *out = NULL;
    if (!cli_steer_active(o)) return ES_EXIT_OK;
    if (o->steer_spec && !o->ev_path)
        return cli_usage_error(cmd, "--steer needs emotion vectors: give them with --ev FILE");
    if (o->ev_path && !o->steer_spec)
        return cli_usage_error(cmd, "--ev needs --steer EMOTION=ALPHA[,...] to say what to steer");
    es_steer_set *set = NULL;
    if (es_steer_set_create(&set) != ES_OK) return cli_fail("steering");
    es_steer_set_preserve_norm(set, o->preserve_norm);
    int rc = ES_EXIT_OK;
    es_ev_set *ev = NULL;
    int32_t *list = NULL;
    if (o->ev_path) {
        if (es_ev_set_load(o->ev_path, NULL, &ev) != ES_OK) {
            rc = cli_fail(o->ev_path);
            goto done;
        }
        /* "joy=1.5,anger=-0.5" */
        char *spec = es_strdup_cli(o->steer_spec);
        if (!spec) {
            rc = ES_EXIT_FAIL;
            goto done;
        }
        char *save = NULL;
        for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            es_steer_item it = es_steer_item_default();
            if (!eq || eq == tok || !parse_float(eq + 1, &it.alpha)) {
                rc = cli_usage_error(cmd, "--steer wants EMOTION=ALPHA pairs, got '%s'", tok);
                break;
            }
            *eq = '\0';
            if (es_ev_set_find(ev, tok) < 0) {
                fprintf(stderr, "emosteer %s: emotion '%s' is not in %s (it has:", cmd, tok,
                        o->ev_path);
                for (int k = 0; k < es_ev_set_n_emotions(ev); k++)
                    fprintf(stderr, " %s", es_ev_set_emotion(ev, k));
                fprintf(stderr, ")\n");
                rc = ES_EXIT_USAGE;
                break;
            }
            it.vectors = ev;
            it.emotion = tok;
            it.hook = o->hook;
            it.positions = (es_steer_positions)o->positions;
            if (!cli_steer_select_layers(ev, o->layers_spec, &it, &list)) {
                rc = cli_usage_error(cmd, "--layers wants A-B or a list L,L,..., got '%s'",
                                     o->layers_spec);
                break;
            }
            if (es_steer_set_add(set, &it) != ES_OK) {
                rc = cli_fail("--steer");
                break;
            }
            free(list);
            list = NULL;
        }
        free(spec);
        if (rc != ES_EXIT_OK) goto done;
    }
    for (int k = 0; k < o->n_cv; k++) {
        es_ev_set *cv = NULL;
        if (es_ev_set_load(o->cv[k].path, "control", &cv) != ES_OK) {
            rc = cli_fail(o->cv[k].path);
            goto done;
        }
        es_steer_item it = es_steer_item_default();
        it.vectors = cv;
        it.emotion = es_ev_set_emotion(cv, 0);
        it.alpha = o->cv[k].scale;
        it.positions = (es_steer_positions)o->positions;
        /* llama.cpp's layer range: only the layers the file has inside [first, last] */
        int32_t *sel = NULL;
        int n_sel = 0;
        if (o->cv_first >= 0) {
            sel = malloc(sizeof *sel * (size_t)(o->cv_last - o->cv_first + 1));
            for (int l = o->cv_first; sel && l <= o->cv_last; l++)
                if (es_ev_set_get(cv, it.emotion, l)) sel[n_sel++] = l;
            it.layers = sel;
            it.n_layers = n_sel;
        }
        es_status st = (o->cv_first >= 0 && n_sel == 0) ? ES_OK : es_steer_set_add(set, &it);
        free(sel);
        es_ev_set_free(cv);
        if (st != ES_OK) {
            rc = cli_fail(o->cv[k].path);
            goto done;
        }
    }
done:
    free(list);
    es_ev_set_free(ev);
    if (rc != ES_EXIT_OK) {
        es_steer_set_free(set);
        return rc;
    }
    *out = set;
    return ES_EXIT_OK;
}

char *es_strdup_cli(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
