/*
 * steer_opts.c — what the steering flags of generate, chat, activations and eval (declared
 * in opts.c's steering group) turn into: a steering set. --ev with --steer E=A,... adds
 * the emotions' vectors; each --control-vector[-scaled] adds a llama.cpp direction file
 * (or an emosteer file of one emotion: one of several emotions is a usage error that
 * points to --ev FILE --steer EMOTION=ALPHA);
 * --hook, --layers, --positions and --preserve-norm say where and how.
 */
#include "steer_opts.h"

#include <stdlib.h>
#include <string.h>

void cli_steer_init(cli_steer_opts *o) {
    memset(o, 0, sizeof *o);
    o->hook = -1;
    o->positions = ES_STEER_POS_ALL;
    o->cv_first = -1;
    o->cv_last = -1;
}

static bool parse_float(const char *s, float *out) {
    double d;
    if (!cli_parse_float(s, -CLI_MAX_ALPHA, CLI_MAX_ALPHA, &d)) return false;
    *out = (float)d;
    return true;
}

bool cli_steer_layers_valid(const char *spec) {
    es_steer_item it = es_steer_item_default();
    int32_t *list = NULL;
    bool ok = cli_steer_parse_layers(spec, &it, &list);
    free(list);
    return ok;
}

bool cli_steer_select_layers(const es_ev_set *ev, const char *spec, es_steer_item *it,
                             int32_t **list, int *missing) {
    *list = NULL;
    *missing = -1;
    if (spec) {
        if (!cli_steer_parse_layers(spec, it, list)) return false;
        /* every layer asked for must have a vector of the item's emotion */
        int n = *list ? it->n_layers : it->layer_last - it->layer_first + 1;
        for (int k = 0; k < n; k++) {
            int l = *list ? (*list)[k] : it->layer_first + k;
            if (!es_ev_set_get(ev, it->emotion, l)) {
                *missing = l;
                return false;
            }
        }
        return true;
    }
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

bool cli_steer_parse_layers(const char *spec, es_steer_item *it, int32_t **list) {
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
            rc = cli_fail("--ev");
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
                rc = cli_usage_error(
                    cmd,
                    "--steer wants EMOTION=ALPHA pairs with ALPHA a number in -%g..%g, got '%s'",
                    CLI_MAX_ALPHA, CLI_MAX_ALPHA, tok);
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
            int missing;
            if (!cli_steer_select_layers(ev, o->layers_spec, &it, &list, &missing)) {
                rc = cli_steer_layers_error(cmd, o, tok, missing);
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
        if (rc == ES_EXIT_OK && es_steer_set_n_items(set) == 0)
            rc = cli_usage_error(cmd, "--steer '%s' names no emotion: give EMOTION=ALPHA[,...]",
                                 o->steer_spec);
        if (rc != ES_EXIT_OK) goto done;
    }
    for (int k = 0; k < o->n_cv; k++) {
        es_ev_set *cv = NULL;
        if (es_ev_set_load(o->cv[k].path, "control", &cv) != ES_OK) {
            rc = cli_fail("--control-vector");
            goto done;
        }
        /* a control vector is one direction per layer; an emosteer file of several
         * emotions would silently steer with its first one */
        if (es_ev_set_n_emotions(cv) > 1) {
            fprintf(stderr, "emosteer %s: --control-vector %s holds %d emotions (", cmd,
                    o->cv[k].path, es_ev_set_n_emotions(cv));
            for (int e = 0; e < es_ev_set_n_emotions(cv); e++)
                fprintf(stderr, "%s%s", e ? " " : "", es_ev_set_emotion(cv, e));
            fprintf(stderr,
                    "), not one direction: use --ev %s --steer EMOTION=ALPHA\n"
                    "Try 'emosteer %s --help'.\n",
                    o->cv[k].path, cmd);
            es_ev_set_free(cv);
            rc = ES_EXIT_USAGE;
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

int cli_steer_layers_error(const char *cmd, const cli_steer_opts *o, const char *emotion,
                           int missing) {
    if (missing < 0)
        return cli_usage_error(cmd,
                               "--layers wants A-B or a list L,L,... of layers in 0..%d, got '%s'",
                               ES_EV_MAX_LAYER - 1, o->layers_spec);
    return cli_usage_error(cmd, "--layers %s: %s has no '%s' vector at layer %d", o->layers_spec,
                           o->ev_path, emotion, missing);
}

char *es_strdup_cli(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
