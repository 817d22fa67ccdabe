/* steer_opts.h — steering flags shared by the subcommands (see steer_opts.c). */
#ifndef ES_CLI_STEER_OPTS_H
#define ES_CLI_STEER_OPTS_H

#include "cli.h"

#define CLI_MAX_CV 16

typedef struct cli_cv {
    char path[4096];
    float scale;
} cli_cv;

typedef struct cli_steer_opts {
    const char *ev_path;     /* --ev */
    const char *steer_spec;  /* --steer "joy=1.5,anger=-0.5" */
    int hook;                /* --hook, -1 = the vectors' own */
    const char *layers_spec; /* --layers, NULL = the vectors' layers */
    int positions;           /* --positions (es_steer_positions) */
    bool preserve_norm;      /* --preserve-norm */
    cli_cv cv[CLI_MAX_CV];   /* --control-vector[-scaled] */
    int n_cv;
    int cv_first, cv_last; /* --control-vector-layer-range, -1 = all */
} cli_steer_opts;

void cli_steer_init(cli_steer_opts *o);
/* Parses a --layers value, "A-B" or "L,L,...", layers in [0, ES_EV_MAX_LAYER), into an
 * item's selection: a range (it->layer_first/last, *list = NULL) or a list (it->layers,
 * n_layers; *list malloc'ed, to free after es_steer_set_add). False for a bad spec. */
bool cli_steer_parse_layers(const char *spec, es_steer_item *it, int32_t **list);
/* Whether spec is a --layers value: "A-B" or "L,L,...", layers in [0, ES_EV_MAX_LAYER). */
bool cli_steer_layers_valid(const char *spec);
/* Sets an item's layers from a --layers spec ("A-B" or "L,L,..."), or when spec is
 * NULL from the EV file's recommended layers (all of its layers if it has none).
 * With a spec, every layer must hold a vector of it->emotion (set it first): false
 * with *missing = that layer, or *missing = -1 for a bad spec.
 * *list (malloc'ed or NULL) must be freed after es_steer_set_add. */
bool cli_steer_select_layers(const es_ev_set *ev, const char *spec, es_steer_item *it,
                             int32_t **list, int *missing);
/* Prints the usage error for a false cli_steer_select_layers; returns ES_EXIT_USAGE. */
int cli_steer_layers_error(const char *cmd, const cli_steer_opts *o, const char *emotion,
                           int missing);
/* Whether any steering flag was given. */
bool cli_steer_active(const cli_steer_opts *o);
/* Builds the steering set (NULL when no steering was asked for). Returns an exit
 * code (ES_EXIT_OK on success) after printing any error. */
int cli_steer_build(const cli_steer_opts *o, const char *cmd, es_steer_set **out);
char *es_strdup_cli(const char *s);

#endif
