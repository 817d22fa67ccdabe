/*
 * ev_set.h — internal to the emotion-vector files: the layout of es_ev_set, shared by
 * ev_set.c (the in-memory set) and ev_file.c (its file formats, described in ev.h),
 * and the checks both make.
 */
#ifndef ES_EV_SET_H
#define ES_EV_SET_H

#include "common.h"

#include <stdint.h>

/* One named emotion: a vector per layer where present. */
typedef struct ev_emotion {
    char *name;    /* valid emotion name (es_ev_name_valid), owned */
    float **layer; /* [set->cap_layer] -> float[n_embd] or NULL when absent */
} ev_emotion;

struct es_ev_set {
    int n_embd;         /* width of every vector */
    es_hook_point hook; /* where the vectors were measured and are added */
    int cap_layer;      /* length of every layer array below */
    ev_emotion *emo;    /* [n_emo] in set order */
    int n_emo, cap_emo;
    float *act_norm;                                               /* [cap_layer], 0 = unknown */
    char *method, *source_model, *query_set, *token_policy, *note; /* never NULL */
    int n_samples;
    int32_t *default_layers; /* [n_default_layers] recommended steering layers, increasing */
    int n_default_layers;    /* 0 = none recorded */
};

/* ES_OK if `name` is a valid emotion name, else ES_ERR_INVALID_ARG with a message. */
es_status es_ev_check_name(const char *name);

/* Index of the first non-finite value of v[0..n), or -1. */
long es_ev_first_nonfinite(const float *v, int n);

/* Replaces *dst (owned, freed) by a copy of src ("" for NULL); ES_ERR_NOMEM leaves it. */
es_status es_ev_copy_str(char **dst, const char *src);

#endif /* ES_EV_SET_H */
