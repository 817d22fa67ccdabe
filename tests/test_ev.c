/*
 * test_ev.c — emotion-vector files: our GGUF round trip (single and multi emotion),
 * the seed paper's JSON (every layer, values equal to the text's numbers rounded to
 * float), llama.cpp control vectors (direction.N <-> block_out layer N), the export
 * refusal for hooks llama.cpp does not steer, and hostile files.
 */
#include "emosteer.h"
#include "ev.h"
#include "gguf.h"
#include "testutil.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void fill(float *v, int n, float seed) {
    for (int i = 0; i < n; i++)
        v[i] = sinf(seed * 1.7f + (float)i * 0.37f) * (1.0f + seed);
}

static bool same_vec(const float *a, const float *b, int n) {
    return a && b && memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* ---- our format ---- */

static void test_roundtrip(void) {
    enum { D = 16 };
    es_ev_set *s = NULL;
    CHECK(es_ev_set_create(D, ES_HOOK_BLOCK_OUT, &s) == ES_OK, "create");
    float v[D];
    for (int l = 0; l < 4; l++) {
        fill(v, D, (float)l);
        CHECK(es_ev_set_put(s, "joy", l, v) == ES_OK, "put joy %d", l);
    }
    fill(v, D, 10.0f);
    CHECK(es_ev_set_put(s, "anger", 1, v) == ES_OK, "put anger 1");
    fill(v, D, 11.0f);
    CHECK(es_ev_set_put(s, "anger", 5, v) == ES_OK, "put anger 5 (layers 2..4 absent)");
    es_ev_meta meta = {"mean_diff", "demo-16m", "EmotionQuery", "response", "", 100};
    CHECK(es_ev_set_set_meta(s, &meta) == ES_OK, "set meta");
    CHECK(es_ev_set_set_act_norm(s, 1, 12.5f) == ES_OK, "act norm");
    CHECK(es_ev_set_n_layer(s) == 6 && es_ev_set_n_emotions(s) == 2, "n_layer %d n_emo %d",
          es_ev_set_n_layer(s), es_ev_set_n_emotions(s));

    const char *path = tmp_path("multi.gguf");
    CHECK(es_ev_set_save(s, path) == ES_OK, "save: %s", es_last_error());
    es_ev_set *r = NULL;
    CHECK(es_ev_set_load(path, NULL, &r) == ES_OK, "load: %s", es_last_error());
    if (r) {
        CHECK(es_ev_set_n_embd(r) == D && es_ev_set_hook(r) == ES_HOOK_BLOCK_OUT &&
                  es_ev_set_n_layer(r) == 6 && es_ev_set_n_emotions(r) == 2,
              "shape after reload");
        CHECK(strcmp(es_ev_set_emotion(r, 0), "joy") == 0 &&
                  strcmp(es_ev_set_emotion(r, 1), "anger") == 0,
              "emotion order kept");
        int n_same = 0, n_absent = 0;
        for (int e = 0; e < 2; e++)
            for (int l = 0; l < 6; l++) {
                const char *name = es_ev_set_emotion(s, e);
                const float *a = es_ev_set_get(s, name, l), *b = es_ev_set_get(r, name, l);
                if (a == NULL)
                    n_absent += b == NULL;
                else
                    n_same += same_vec(a, b, D);
            }
        CHECK(n_same == 6 && n_absent == 6, "vectors bit-identical (%d/6) and absences kept (%d/6)",
              n_same, n_absent);
        es_ev_meta m;
        es_ev_set_get_meta(r, &m);
        CHECK(strcmp(m.method, "mean_diff") == 0 && strcmp(m.source_model, "demo-16m") == 0 &&
                  strcmp(m.query_set, "EmotionQuery") == 0 &&
                  strcmp(m.token_policy, "response") == 0 && m.n_samples == 100,
              "metadata round trip");
        CHECK(es_ev_set_act_norm(r, 1) == 12.5f && es_ev_set_act_norm(r, 0) == 0.0f, "act_norm");
    }
    es_ev_set_free(r);

    /* a multi-emotion file has no direction.N tensors; a single block_out one without a
     * layer-0 vector has only them (llama.cpp rejects files with other tensors) */
    es_gguf *g = NULL;
    if (CHECK(es_gguf_open(path, &g) == ES_OK, "reopen: %s", es_last_error())) {
        CHECK(es_gguf_find_tensor(g, "direction.1") == NULL, "multi file has no direction.1");
        CHECK(es_gguf_find_tensor(g, "ev.anger.5") != NULL, "ev.anger.5 present");
        es_gguf_close(g);
    }
    es_ev_set *one = NULL;
    CHECK(es_ev_set_create(D, ES_HOOK_BLOCK_OUT, &one) == ES_OK, "create single");
    for (int l = 1; l < 4; l++)
        es_ev_set_put(one, "joy", l, es_ev_set_get(s, "joy", l));
    es_ev_set_set_act_norm(one, 2, 7.0f);
    path = tmp_path("single.gguf");
    CHECK(es_ev_set_save(one, path) == ES_OK, "save single: %s", es_last_error());
    if (CHECK(es_gguf_open(path, &g) == ES_OK, "open single: %s", es_last_error())) {
        es_gguf_str arch;
        uint32_t lc = 0;
        CHECK(es_gguf_get_str(g, "general.architecture", &arch) == ES_OK && arch.len == 13 &&
                  memcmp(arch.ptr, "controlvector", 13) == 0,
              "general.architecture = controlvector");
        CHECK(es_gguf_get_u32(g, "controlvector.layer_count", &lc) == ES_OK && lc == 3,
              "controlvector.layer_count %u, want 3", lc);
        CHECK(es_gguf_n_tensors(g) == 3 && es_gguf_find_tensor(g, "direction.0") == NULL,
              "exactly direction.1..3, %lld tensors", (long long)es_gguf_n_tensors(g));
        for (int l = 1; l < 4; l++) {
            char name[32];
            snprintf(name, sizeof name, "direction.%d", l);
            const es_gguf_tensor *t = es_gguf_find_tensor(g, name);
            CHECK(t && t->type == ES_TYPE_F32 && t->n_dims == 1 && t->ne[0] == D &&
                      same_vec(t->data, es_ev_set_get(one, "joy", l), D),
                  "%s equals ev.joy.%d", name, l);
        }
        es_gguf_close(g);
    }
    r = NULL;
    if (CHECK(es_ev_set_load(path, NULL, &r) == ES_OK, "reload single: %s", es_last_error())) {
        int same = 0;
        for (int l = 1; l < 4; l++)
            same += same_vec(es_ev_set_get(r, "joy", l), es_ev_set_get(one, "joy", l), D);
        CHECK(same == 3 && es_ev_set_get(r, "joy", 0) == NULL && es_ev_set_find(r, "joy") == 0 &&
                  es_ev_set_act_norm(r, 2) == 7.0f && es_ev_set_hook(r) == ES_HOOK_BLOCK_OUT,
              "single (direction layout) round trip: name, vectors, act_norm");
    }
    es_ev_set_free(r);
    /* with a layer-0 vector it cannot be a llama.cpp file: ev layout */
    es_ev_set_put(one, "joy", 0, es_ev_set_get(s, "joy", 0));
    path = tmp_path("single0.gguf");
    CHECK(es_ev_set_save(one, path) == ES_OK, "save single with layer 0");
    if (CHECK(es_gguf_open(path, &g) == ES_OK, "open single0")) {
        CHECK(es_gguf_find_tensor(g, "direction.1") == NULL && es_gguf_find_tensor(g, "ev.joy.0"),
              "layer 0 present: ev layout");
        es_gguf_close(g);
    }
    r = NULL;
    CHECK(es_ev_set_load(path, NULL, &r) == ES_OK &&
              same_vec(es_ev_set_get(r, "joy", 0), es_ev_set_get(one, "joy", 0), D),
          "single0 round trip");
    es_ev_set_free(r);
    /* an attn_out single-emotion file must not pretend to be a control vector */
    es_ev_set *att = NULL;
    es_ev_set_create(D, ES_HOOK_ATTN_OUT, &att);
    es_ev_set_put(att, "joy", 2, v);
    path = tmp_path("single_attn.gguf");
    CHECK(es_ev_set_save(att, path) == ES_OK, "save attn single");
    if (CHECK(es_gguf_open(path, &g) == ES_OK, "open attn single")) {
        CHECK(es_gguf_find_tensor(g, "direction.2") == NULL, "attn_out file has no direction.N");
        es_gguf_close(g);
    }
    es_ev_set_free(att);
    es_ev_set_free(one);
    es_ev_set_free(s);
}

static void test_api_checks(void) {
    enum { D = 8 };
    es_ev_set *s = NULL;
    es_ev_set_create(D, ES_HOOK_MLP_OUT, &s);
    float v[D] = {0};
    CHECK(es_ev_set_put(s, "", 0, v) == ES_ERR_INVALID_ARG, "empty name");
    CHECK(es_ev_set_put(s, "a.b", 0, v) == ES_ERR_INVALID_ARG, "dot in name");
    CHECK(es_ev_set_put(s, "joy", -1, v) == ES_ERR_INVALID_ARG, "negative layer");
    CHECK(es_ev_set_put(s, "joy", ES_EV_MAX_LAYER, v) == ES_ERR_INVALID_ARG, "layer too large");
    v[3] = NAN;
    CHECK(es_ev_set_put(s, "joy", 0, v) == ES_ERR_FORMAT && strstr(es_last_error(), "value 3"),
          "NaN rejected naming index 3: %s", es_last_error());
    v[3] = INFINITY;
    CHECK(es_ev_set_put(s, "joy", 0, v) == ES_ERR_FORMAT, "Inf rejected");
    CHECK(es_ev_set_n_emotions(s) == 0, "failed puts add nothing");
    v[3] = 1;
    CHECK(es_ev_set_put(s, "joy", 0, v) == ES_OK, "put ok");
    CHECK(es_ev_set_rename(s, "joy", "happy") == ES_OK && es_ev_set_find(s, "happy") == 0 &&
              es_ev_set_find(s, "joy") == -1,
          "rename");
    es_ev_set *o = NULL;
    es_ev_set_create(D + 1, ES_HOOK_MLP_OUT, &o);
    CHECK(es_ev_set_merge(s, o) == ES_ERR_INVALID_ARG, "merge of different widths refused");
    es_ev_set_free(o);
    es_ev_set_create(D, ES_HOOK_BLOCK_OUT, &o);
    CHECK(es_ev_set_merge(s, o) == ES_ERR_INVALID_ARG, "merge of different hooks refused");
    es_ev_set_free(o);
    CHECK(es_ev_set_create(0, ES_HOOK_MLP_OUT, &o) == ES_ERR_INVALID_ARG, "width 0 refused");
    es_ev_set_free(s);
}

/* ---- the seed paper's JSON ---- */

/* The index-th number of layer `layer` in the JSON text, parsed independently of jansson. */
static double json_text_value(const char *text, int layer, int index) {
    char key[32];
    snprintf(key, sizeof key, "\"%d\"", layer);
    const char *p = strstr(text, key);
    if (!p) return NAN;
    p = strchr(p, '[');
    if (!p) return NAN;
    while (*p == '[' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    for (int i = 0;; i++) {
        char *end;
        double d = strtod(p, &end);
        if (end == p) return NAN;
        if (i == index) return d;
        p = end;
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            p++;
    }
}

static void test_paper_json(void) {
    static const char *emotions[5] = {"anger", "disgust", "fear", "joy", "sadness"};
    if (es_test_shared() == NULL) {
        printf("skip paper JSON: no shared folder\n");
        return;
    }
    es_ev_set *all = NULL;
    double t0 = es_time_s();
    for (int e = 0; e < 5; e++) {
        char rel[128];
        snprintf(rel, sizeof rel, "ev/qwen2.5_%s.json", emotions[e]);
        char path[4096];
        snprintf(path, sizeof path, "%s", es_test_shared_path(rel));
        es_ev_set *s = NULL;
        if (!CHECK(es_ev_set_load(path, NULL, &s) == ES_OK, "load %s: %s", path, es_last_error()))
            continue;
        CHECK(es_ev_set_hook(s) == ES_HOOK_ATTN_OUT, "%s: hook attn_out", emotions[e]);
        CHECK(es_ev_set_n_embd(s) == 3584, "%s: width %d", emotions[e], es_ev_set_n_embd(s));
        CHECK(es_ev_set_n_layer(s) == 28, "%s: %d layers", emotions[e], es_ev_set_n_layer(s));
        CHECK(es_ev_set_n_emotions(s) == 1 && strcmp(es_ev_set_emotion(s, 0), emotions[e]) == 0,
              "%s: name from the file name: %s", emotions[e], es_ev_set_emotion(s, 0));
        int present = 0;
        for (int l = 0; l < 28; l++)
            present += es_ev_set_get(s, emotions[e], l) != NULL;
        CHECK(present == 28, "%s: %d of 28 layers present", emotions[e], present);
        /* a sample of values equals the text's number rounded to float */
        size_t len;
        char *text = es_test_read_file(path, &len);
        int n_checked = 0, n_equal = 0;
        for (int l = 0; text && l < 28; l += 3)
            for (int i = 0; i < 3584; i += 397) {
                double d = json_text_value(text, l, i);
                const float *v = es_ev_set_get(s, emotions[e], l);
                n_checked++;
                n_equal += v && v[i] == (float)d;
            }
        int last = 3583;
        double d = text ? json_text_value(text, 27, last) : NAN;
        const float *v27 = es_ev_set_get(s, emotions[e], 27);
        n_checked++;
        n_equal += v27 && v27[last] == (float)d;
        CHECK(n_checked > 50 && n_equal == n_checked,
              "%s: %d/%d sampled values equal the JSON text", emotions[e], n_equal, n_checked);
        free(text);
        if (all == NULL) {
            all = s;
        } else {
            CHECK(es_ev_set_merge(all, s) == ES_OK, "merge %s: %s", emotions[e], es_last_error());
            es_ev_set_free(s);
        }
    }
    printf("paper JSON: 5 files loaded in %.2f s\n", es_time_s() - t0);
    if (all == NULL) return;
    /* the five emotions as one multi-emotion file */
    const char *path = tmp_path("qwen2.5_all.gguf");
    CHECK(es_ev_set_save(all, path) == ES_OK, "save 5 emotions: %s", es_last_error());
    es_ev_set *r = NULL;
    if (CHECK(es_ev_set_load(path, NULL, &r) == ES_OK, "reload: %s", es_last_error())) {
        int same = 0;
        for (int e = 0; e < 5; e++)
            for (int l = 0; l < 28; l++)
                same += same_vec(es_ev_set_get(all, emotions[e], l),
                                 es_ev_set_get(r, emotions[e], l), 3584);
        CHECK(same == 140 && es_ev_set_hook(r) == ES_HOOK_ATTN_OUT && es_ev_set_n_emotions(r) == 5,
              "5 x 28 vectors bit-identical after GGUF round trip (%d)", same);
    }
    es_ev_set_free(r);
    /* export for llama.cpp: attn_out must be refused, saying the hook differs */
    es_status st =
        es_ev_set_export_control_vector(all, "joy", 1.0f, false, tmp_path("joy_cv.gguf"));
    CHECK(st == ES_ERR_UNSUPPORTED && strstr(es_last_error(), "hook differs") &&
              strstr(es_last_error(), "attn_out"),
          "attn_out export refused: %d %s", st, es_last_error());
    CHECK(access(tmp_path("joy_cv.gguf"), F_OK) != 0, "no file written on refusal");
    st = es_ev_set_export_control_vector(all, "joy", 2.0f, true, tmp_path("joy_cv.gguf"));
    CHECK(st == ES_OK, "forced export: %s", es_last_error());
    es_ev_set *cv = NULL;
    if (CHECK(es_ev_set_load(tmp_path("joy_cv.gguf"), NULL, &cv) == ES_OK, "load forced export: %s",
              es_last_error())) {
        es_ev_meta m;
        es_ev_set_get_meta(cv, &m);
        CHECK(strstr(m.note, "attn_out") != NULL, "note records the hook: '%s'", m.note);
        CHECK(es_ev_set_hook(cv) == ES_HOOK_BLOCK_OUT && es_ev_set_find(cv, "joy") == 0,
              "reimported as block_out 'joy'");
        CHECK(es_ev_set_get(cv, "joy", 0) == NULL, "layer 0 dropped");
        const float *a = es_ev_set_get(all, "joy", 7), *b = es_ev_set_get(cv, "joy", 7);
        CHECK(a && b && b[100] == 2.0f * a[100] && b[3583] == 2.0f * a[3583], "scale applied");
    }
    es_ev_set_free(cv);
    es_ev_set_free(all);
}

/* ---- llama.cpp control vectors ---- */

/* Writes a control vector with the given direction layers (width d). */
static void write_cv(const char *path, const int *layers, int n, int d, int type, float poison) {
    es_gguf_writer *w = es_gguf_writer_new();
    es_gguf_writer_set_str(w, "general.architecture", "controlvector");
    es_gguf_writer_set_str(w, "controlvector.model_hint", "llama");
    es_gguf_writer_set_u32(w, "controlvector.layer_count", (uint32_t)n);
    for (int k = 0; k < n; k++) {
        float v[64];
        uint16_t h[64];
        fill(v, d, (float)layers[k]);
        if (k == n - 1) v[d / 2] = poison == 0 ? v[d / 2] : poison;
        for (int i = 0; i < d; i++)
            h[i] = es_fp32_to_fp16(v[i]);
        char name[32];
        snprintf(name, sizeof name, "direction.%d", layers[k]);
        int64_t ne[1] = {d};
        es_gguf_writer_add_tensor(w, name, type, 1, ne,
                                  type == ES_TYPE_F16 ? (void *)h : (void *)v);
    }
    CHECK(es_gguf_writer_write(w, path) == ES_OK, "write %s: %s", path, es_last_error());
    es_gguf_writer_free(w);
}

static void test_control_vector(void) {
    enum { D = 12 };
    int layers[3] = {1, 2, 4};
    const char *path = tmp_path("happy.gguf");
    write_cv(path, layers, 3, D, ES_TYPE_F32, 0);
    es_ev_set *s = NULL;
    if (CHECK(es_ev_set_load(path, NULL, &s) == ES_OK, "load cv: %s", es_last_error())) {
        CHECK(es_ev_set_hook(s) == ES_HOOK_BLOCK_OUT, "control vector -> block_out");
        CHECK(es_ev_set_find(s, "happy") == 0, "name from file name 'happy'");
        CHECK(es_ev_set_n_layer(s) == 5 && es_ev_set_get(s, "happy", 0) == NULL &&
                  es_ev_set_get(s, "happy", 3) == NULL,
              "layers 1, 2, 4 only");
        float v[D];
        int ok = 0;
        for (int k = 0; k < 3; k++) {
            fill(v, D, (float)layers[k]);
            ok += same_vec(es_ev_set_get(s, "happy", layers[k]), v, D);
        }
        CHECK(ok == 3, "direction.N is block_out layer N, values exact (%d/3)", ok);
        es_ev_meta m;
        es_ev_set_get_meta(s, &m);
        CHECK(strcmp(m.source_model, "llama") == 0, "model hint kept: %s", m.source_model);
        /* export it back: same tensors */
        CHECK(es_ev_set_export_control_vector(s, "happy", 1.0f, false, tmp_path("back.gguf")) ==
                  ES_OK,
              "export block_out: %s", es_last_error());
        es_gguf *g = NULL;
        if (CHECK(es_gguf_open(tmp_path("back.gguf"), &g) == ES_OK, "open export")) {
            const es_gguf_tensor *t = es_gguf_find_tensor(g, "direction.4");
            CHECK(t && same_vec(t->data, es_ev_set_get(s, "happy", 4), D), "direction.4 exported");
            CHECK(es_gguf_find_tensor(g, "direction.0") == NULL && es_gguf_n_tensors(g) == 3,
                  "3 tensors, no direction.0");
            es_gguf_close(g);
        }
    }
    es_ev_set_free(s);
    s = NULL;
    CHECK(es_ev_set_load(path, "calm", &s) == ES_OK && es_ev_set_find(s, "calm") == 0,
          "explicit name");
    es_ev_set_free(s);

    /* a nonzero layer-0 block_out vector cannot be exported without force */
    es_ev_set *z = NULL;
    es_ev_set_create(D, ES_HOOK_BLOCK_OUT, &z);
    float v[D];
    fill(v, D, 3);
    es_ev_set_put(z, "joy", 0, v);
    es_ev_set_put(z, "joy", 1, v);
    CHECK(es_ev_set_export_control_vector(z, "joy", 1, false, tmp_path("z.gguf")) ==
                  ES_ERR_UNSUPPORTED &&
              strstr(es_last_error(), "layer 0"),
          "layer 0 refused: %s", es_last_error());
    CHECK(es_ev_set_export_control_vector(z, "nope", 1, false, tmp_path("z.gguf")) ==
              ES_ERR_NOT_FOUND,
          "unknown emotion");
    es_ev_set_free(z);

    /* F16 directions are read too */
    path = tmp_path("f16cv.gguf");
    write_cv(path, layers, 3, D, ES_TYPE_F16, 0);
    s = NULL;
    if (CHECK(es_ev_set_load(path, "x", &s) == ES_OK, "load f16 cv: %s", es_last_error())) {
        fill(v, D, 2);
        const float *r = es_ev_set_get(s, "x", 2);
        CHECK(r && r[5] == es_fp16_to_fp32(es_fp32_to_fp16(v[5])), "f16 values");
    }
    es_ev_set_free(s);

    /* bad control vectors */
    int zero[2] = {0, 1};
    write_cv(tmp_path("bad0.gguf"), zero, 2, D, ES_TYPE_F32, 0);
    s = NULL;
    CHECK(es_ev_set_load(tmp_path("bad0.gguf"), "x", &s) == ES_ERR_FORMAT &&
              strstr(es_last_error(), "direction.0"),
          "direction.0 refused: %s", es_last_error());
    write_cv(tmp_path("badnan.gguf"), layers, 3, D, ES_TYPE_F32, NAN);
    CHECK(es_ev_set_load(tmp_path("badnan.gguf"), "x", &s) == ES_ERR_FORMAT &&
              strstr(es_last_error(), "direction.4"),
          "NaN refused naming the tensor: %s", es_last_error());
    write_cv(tmp_path("badinf.gguf"), layers, 3, D, ES_TYPE_F16, INFINITY);
    CHECK(es_ev_set_load(tmp_path("badinf.gguf"), "x", &s) == ES_ERR_FORMAT, "Inf (f16) refused");
    /* widths differ between tensors */
    es_gguf_writer *w = es_gguf_writer_new();
    float a[D + 1] = {0};
    int64_t ne1[1] = {D}, ne2[1] = {D + 1};
    es_gguf_writer_add_tensor(w, "direction.1", ES_TYPE_F32, 1, ne1, a);
    es_gguf_writer_add_tensor(w, "direction.2", ES_TYPE_F32, 1, ne2, a);
    es_gguf_writer_write(w, tmp_path("badwidth.gguf"));
    es_gguf_writer_free(w);
    CHECK(es_ev_set_load(tmp_path("badwidth.gguf"), "x", &s) == ES_ERR_FORMAT &&
              strstr(es_last_error(), "width"),
          "width mismatch refused: %s", es_last_error());
    /* 2-D tensor */
    w = es_gguf_writer_new();
    float b2[2 * D] = {0};
    int64_t ne3[2] = {D, 2};
    es_gguf_writer_add_tensor(w, "direction.1", ES_TYPE_F32, 2, ne3, b2);
    es_gguf_writer_write(w, tmp_path("bad2d.gguf"));
    es_gguf_writer_free(w);
    CHECK(es_ev_set_load(tmp_path("bad2d.gguf"), "x", &s) == ES_ERR_FORMAT, "2-D refused: %s",
          es_last_error());
    /* no direction tensors at all */
    w = es_gguf_writer_new();
    es_gguf_writer_set_str(w, "general.architecture", "llama");
    es_gguf_writer_add_tensor(w, "token_embd.weight", ES_TYPE_F32, 1, ne1, a);
    es_gguf_writer_write(w, tmp_path("model.gguf"));
    es_gguf_writer_free(w);
    CHECK(es_ev_set_load(tmp_path("model.gguf"), "x", &s) == ES_ERR_FORMAT,
          "model file refused: %s", es_last_error());
    CHECK(s == NULL, "out untouched on failure");
}

/* ---- hostile emosteer GGUF ---- */

/* Writes an emosteer file with emotions listed and tensors given. */
static es_gguf_writer *ours_writer(const char *const *emos, int n_emo, uint32_t d,
                                   uint32_t layers) {
    es_gguf_writer *w = es_gguf_writer_new();
    es_gguf_writer_set_u32(w, "emosteer.format_version", 1);
    es_gguf_writer_set_arr_str(w, "emosteer.emotions", emos, (uint64_t)n_emo);
    es_gguf_writer_set_str(w, "emosteer.hook", "block_out");
    es_gguf_writer_set_u32(w, "emosteer.n_embd", d);
    es_gguf_writer_set_u32(w, "emosteer.layer_count", layers);
    return w;
}

static void expect_bad_ours(es_gguf_writer *w, const char *name, es_status want, const char *msg) {
    const char *path = tmp_path(name);
    es_gguf_writer_write(w, path);
    es_gguf_writer_free(w);
    es_ev_set *s = NULL;
    es_status st = es_ev_set_load(path, NULL, &s);
    CHECK(st == want && s == NULL && strstr(es_last_error(), msg),
          "%s: status %d, '%s' should "
          "mention '%s'",
          name, st, es_last_error(), msg);
    es_ev_set_free(s);
}

static void test_bad_ours(void) {
    enum { D = 4 };
    const char *joy[1] = {"joy"};
    const char *two[2] = {"joy", "fear"};
    float v[D] = {1, 2, 3, 4}, bad[D] = {1, NAN, 3, 4}, wide[D + 1] = {0};
    int64_t ne[1] = {D}, ne5[1] = {D + 1};

    es_gguf_writer *w = ours_writer(two, 2, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.0", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "missing.gguf", ES_ERR_FORMAT, "fear");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.1", ES_TYPE_F32, 1, ne, bad);
    expect_bad_ours(w, "nan.gguf", ES_ERR_FORMAT, "ev.joy.1");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.1", ES_TYPE_F32, 1, ne5, wide);
    expect_bad_ours(w, "wide.gguf", ES_ERR_FORMAT, "width");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.3", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "beyond.gguf", ES_ERR_FORMAT, "layer 3");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.0", ES_TYPE_F32, 1, ne, v);
    es_gguf_writer_add_tensor(w, "ev.sad.0", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "unlisted.gguf", ES_ERR_FORMAT, "ev.sad.0");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.01", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "badname.gguf", ES_ERR_FORMAT, "ev.joy.01");

    w = ours_writer(two, 2, D, 3);
    es_gguf_writer_set_str(w, "emosteer.tensors", "direction");
    es_gguf_writer_add_tensor(w, "direction.1", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "dir2.gguf", ES_ERR_FORMAT, "exactly 1 emotion");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_set_str(w, "emosteer.tensors", "direction");
    es_gguf_writer_add_tensor(w, "direction.0", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "dir0.gguf", ES_ERR_FORMAT, "direction.0");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_set_str(w, "emosteer.tensors", "packed");
    expect_bad_ours(w, "layout.gguf", ES_ERR_FORMAT, "packed");

    const char *dup[2] = {"joy", "joy"};
    w = ours_writer(dup, 2, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.0", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "dupname.gguf", ES_ERR_FORMAT, "twice");

    const char *evil[1] = {"a/b"};
    w = ours_writer(evil, 1, D, 3);
    expect_bad_ours(w, "evilname.gguf", ES_ERR_FORMAT, "not a valid name");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_set_str(w, "emosteer.hook", "residual");
    es_gguf_writer_add_tensor(w, "ev.joy.0", ES_TYPE_F32, 1, ne, v);
    expect_bad_ours(w, "badhook.gguf", ES_ERR_INVALID_ARG, "residual");

    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_set_u32(w, "emosteer.format_version", 99);
    expect_bad_ours(w, "version.gguf", ES_ERR_UNSUPPORTED, "99");

    w = ours_writer(joy, 1, D, 100000);
    expect_bad_ours(w, "layers.gguf", ES_ERR_FORMAT, "layer_count");

    int16_t iv[D] = {1, 2, 3, 4};
    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.0", ES_TYPE_I16, 1, ne, iv);
    expect_bad_ours(w, "i16.gguf", ES_ERR_UNSUPPORTED, "I16");

    /* truncations of a good file never load and never crash */
    const char *good = tmp_path("good.gguf");
    w = ours_writer(joy, 1, D, 3);
    es_gguf_writer_add_tensor(w, "ev.joy.2", ES_TYPE_F32, 1, ne, v);
    es_gguf_writer_write(w, good);
    es_gguf_writer_free(w);
    size_t len;
    char *img = es_test_read_file(good, &len);
    /* bytes up to the end of the last tensor's data (after it: alignment padding) */
    size_t data_end = len;
    es_gguf *g = NULL;
    if (img && es_gguf_open_memory(img, len, &g) == ES_OK) {
        const es_gguf_tensor *t = es_gguf_find_tensor(g, "ev.joy.2");
        if (t) data_end = (size_t)((const char *)t->data - img) + t->nbytes;
        es_gguf_close(g);
    }
    int n_fail = 0, n_cuts = 0;
    for (size_t cut = 0; img && cut < data_end; cut += 7, n_cuts++) {
        es_ev_set *s = NULL;
        n_fail += es_ev_set_load_memory(img, cut, NULL, &s) != ES_OK;
        es_ev_set_free(s);
    }
    es_ev_set *s = NULL;
    CHECK(img && es_ev_set_load_memory(img, len, NULL, &s) == ES_OK && s &&
              same_vec(es_ev_set_get(s, "joy", 2), v, D),
          "whole image loads from memory");
    es_ev_set_free(s);
    CHECK(img && n_cuts > 20 && n_fail == n_cuts, "every truncation refused (%d of %d)", n_fail,
          n_cuts);
    free(img);
}

/* ---- hostile JSON ---- */

static void test_bad_json(void) {
    struct {
        const char *json, *want;
    } cases[] = {
        {"{\"0\": [[1, 2, 3]], \"1\": [[1, 2", "JSON"},
        {"[1, 2, 3]", "neither"},
        {"{}", "no layers"},
        {"{\"a\": [[1]]}", "not a layer number"},
        {"{\"-1\": [[1]]}", "not a layer number"},
        {"{\"00\": [[1]]}", "not a layer number"},
        {"{\"0\": [[1, 2]], \"2\": [[1, 2]]}", "missing"},
        {"{\"0\": [[1, 2]], \"1\": [[1, 2, 3]]}", "width"},
        {"{\"0\": [[1, \"x\"]]}", "not a number"},
        {"{\"0\": [[1, null]]}", "not a number"},
        {"{\"0\": [[1, 1e39]]}", "not a finite float"},
        {"{\"0\": [[1, -1e39]]}", "not a finite float"},
        {"{\"0\": [[1, 2], [3, 4]]}", "2 vectors"},
        {"{\"0\": []}", "non-empty"},
        {"{\"0\": [[]]}", "non-empty"},
        {"{\"0\": 5}", "non-empty"},
        {"{\"0\": [[1]], \"0\": [[2]]}", "JSON"},
        {"{\"0\": [[1e400]]}", "JSON"},
        {"", "neither"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        es_ev_set *s = NULL;
        es_status st = es_ev_set_load_memory(cases[i].json, strlen(cases[i].json), "x", &s);
        CHECK(st == ES_ERR_FORMAT && s == NULL && strstr(es_last_error(), cases[i].want),
              "bad JSON %zu (%s): status %d, '%s' should mention '%s'", i, cases[i].json, st,
              es_last_error(), cases[i].want);
        es_ev_set_free(s);
    }
    /* accepted variants: flat lists, integers, exponents, whitespace */
    const char *ok = " \n{\"1\": [0.5, -2, 3e-2], \"0\": [[1, 2, 3.25]]}";
    es_ev_set *s = NULL;
    if (CHECK(es_ev_set_load_memory(ok, strlen(ok), "e", &s) == ES_OK, "good JSON: %s",
              es_last_error())) {
        const float *a = es_ev_set_get(s, "e", 0), *b = es_ev_set_get(s, "e", 1);
        CHECK(a && b && a[2] == 3.25f && b[1] == -2.0f && b[2] == (float)3e-2, "values");
    }
    es_ev_set_free(s);
    /* a file name that gives no valid emotion name asks for one */
    const char *p = tmp_path("weird name!.json");
    FILE *f = fopen(p, "w");
    fputs("{\"0\": [[1]]}", f);
    fclose(f);
    CHECK(es_ev_set_load(p, NULL, &s) == ES_ERR_INVALID_ARG &&
              strstr(es_last_error(), "pass a name"),
          "bad derived name: %s", es_last_error());
    CHECK(es_ev_set_load(p, "ok", &s) == ES_OK, "explicit name works");
    es_ev_set_free(s);
    CHECK(es_ev_set_load(tmp_path("does-not-exist.json"), NULL, &s) == ES_ERR_IO, "missing file");
}

static void cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/es_test_ev_XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_roundtrip();
    test_api_checks();
    test_control_vector();
    test_bad_ours();
    test_bad_json();
    test_paper_json();
    cleanup();
    return es_test_finish();
}
