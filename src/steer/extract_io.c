/*
 * extract_io.c — the files and texts around extraction: sample prompts
 * (es_extract_prompt), pairs files for teacher forcing and checkpoint files (formats
 * in extract.h).
 */
#include "extract.h"
#include "file.h"

#include "ev.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FILE_BYTES ((size_t)1 << 30)
#define MAX_TEXT_BYTES ((size_t)1 << 20)

uint64_t es_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------------------------ */
/* Tokens                                                                                */
/* ------------------------------------------------------------------------------------ */

static es_status tokenize_alloc(const es_vocab *vocab, const char *text, size_t len,
                                bool add_special, bool parse_special, int32_t **toks, int *n_toks) {
    if (len > MAX_TEXT_BYTES * 4)
        return es_error(ES_ERR_INVALID_ARG, "extract: text of %zu bytes is too long", len);
    return es_tokenize_alloc(vocab, text, len, add_special, parse_special, toks, n_toks);
}

es_status es_extract_tokenize_response(const es_vocab *vocab, const char *text, int32_t **toks,
                                       int *n_toks) {
    if (!vocab || !text || !toks || !n_toks)
        return es_error(ES_ERR_INVALID_ARG, "extract: NULL argument");
    return tokenize_alloc(vocab, text, strlen(text), false, false, toks, n_toks);
}

es_status es_extract_prompt(const es_vocab *vocab, es_chat_format fmt, const char *system,
                            const char *prefix, const char *query, int32_t **toks, int *n_toks) {
    if (!vocab || !query || !toks || !n_toks)
        return es_error(ES_ERR_INVALID_ARG, "extract: NULL argument");
    es_status st;
    if (fmt == ES_CHAT_NONE) {
        /* "<query>" I asked.\n"<prefix> */
        static const char mid[] = "\" I asked.\n\"";
        size_t lq = strlen(query), lp = prefix ? strlen(prefix) : 0;
        if (lq > MAX_TEXT_BYTES || lp > MAX_TEXT_BYTES)
            return es_error(ES_ERR_INVALID_ARG, "extract: query or prefix over %zu bytes",
                            MAX_TEXT_BYTES);
        char *text = malloc(1 + lq + sizeof mid + lp);
        if (!text) return es_error(ES_ERR_NOMEM, "extract: out of memory for a prompt");
        size_t n = 0;
        text[n++] = '"';
        memcpy(text + n, query, lq), n += lq;
        memcpy(text + n, mid, sizeof mid - 1), n += sizeof mid - 1;
        if (lp) memcpy(text + n, prefix, lp), n += lp;
        text[n] = '\0';
        st = tokenize_alloc(vocab, text, n, true, false, toks, n_toks);
        free(text);
        return st;
    }
    es_chat_msg msgs[2];
    size_t n_msgs = 0;
    if (system && *system) msgs[n_msgs++] = (es_chat_msg){"system", system};
    msgs[n_msgs++] = (es_chat_msg){"user", query};
    es_chat_options opt = es_chat_default_options();
    opt.add_generation_prompt = true;
    int32_t bos = es_vocab_bos(vocab), eos = es_vocab_eos(vocab);
    opt.bos_text = bos >= 0 ? es_vocab_token_text(vocab, bos) : NULL;
    opt.eos_text = eos >= 0 ? es_vocab_token_text(vocab, eos) : NULL;
    char *text = NULL;
    if ((st = es_chat_render_ex(fmt, msgs, n_msgs, &opt, &text)) != ES_OK) return st;
    st = tokenize_alloc(vocab, text, strlen(text), false, true, toks, n_toks);
    free(text);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* Pairs files                                                                           */
/* ------------------------------------------------------------------------------------ */

void es_extract_pairs_free(es_extract_pair *pairs, int n) {
    for (int i = 0; pairs && i < n; i++) {
        free(pairs[i].query);
        free(pairs[i].emotion);
        free(pairs[i].neutral);
        free(pairs[i].emotional);
    }
    free(pairs);
}

/* Copies the non-empty string field `key` of obj into *out. */
static es_status pair_field(json_t *obj, const char *key, const char *name, int line, char **out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return es_error(ES_ERR_FORMAT, "%s:%d: missing \"%s\"", name, line, key);
    if (!json_is_string(v))
        return es_error(ES_ERR_FORMAT, "%s:%d: \"%s\" is not a string", name, line, key);
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len == 0) return es_error(ES_ERR_FORMAT, "%s:%d: \"%s\" is empty", name, line, key);
    if (len > MAX_TEXT_BYTES)
        return es_error(ES_ERR_FORMAT, "%s:%d: \"%s\" is longer than %zu bytes", name, line, key,
                        MAX_TEXT_BYTES);
    if (strlen(s) != len)
        return es_error(ES_ERR_FORMAT, "%s:%d: \"%s\" contains a NUL character", name, line, key);
    if (!(*out = es_strdup(s))) return es_error(ES_ERR_NOMEM, "%s:%d: out of memory", name, line);
    return ES_OK;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

es_status es_extract_pairs_parse(const char *text, size_t len, const char *name,
                                 es_extract_pair **pairs, int *n) {
    if (!text || !pairs || !n) return es_error(ES_ERR_INVALID_ARG, "extract: NULL argument");
    if (!name) name = "pairs";
    es_extract_pair *v = NULL;
    int count = 0, cap = 0, line = 0;
    es_status st = ES_OK;
    size_t pos = 0;
    while (pos < len && st == ES_OK) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n_line = nl ? (size_t)(nl - s) : len - pos;
        pos += n_line + (nl ? 1 : 0);
        if (blank(s, n_line)) continue;
        if (line == INT32_MAX) {
            st = es_error(ES_ERR_FORMAT, "%s: too many lines", name);
            break;
        }
        json_error_t err;
        json_t *obj = json_loadb(s, n_line, JSON_REJECT_DUPLICATES, &err);
        if (!obj) {
            st = es_error(ES_ERR_FORMAT, "%s:%d: not valid JSON: %s (column %d)", name, line,
                          err.text, err.column);
            break;
        }
        if (!json_is_object(obj)) {
            json_decref(obj);
            st = es_error(ES_ERR_FORMAT, "%s:%d: expected a JSON object", name, line);
            break;
        }
        if (count == cap) {
            int nc = cap ? 2 * cap : 64;
            es_extract_pair *nv = cap < (1 << 28) ? realloc(v, (size_t)nc * sizeof *nv) : NULL;
            if (!nv) {
                json_decref(obj);
                st = es_error(ES_ERR_NOMEM, "%s:%d: out of memory", name, line);
                break;
            }
            v = nv;
            cap = nc;
        }
        es_extract_pair *p = &v[count];
        memset(p, 0, sizeof *p);
        p->line = line;
        count++;
        if ((st = pair_field(obj, "query", name, line, &p->query)) == ES_OK &&
            (st = pair_field(obj, "emotion", name, line, &p->emotion)) == ES_OK &&
            (st = pair_field(obj, "neutral", name, line, &p->neutral)) == ES_OK)
            st = pair_field(obj, "emotional", name, line, &p->emotional);
        json_decref(obj);
        if (st == ES_OK && (!es_ev_name_valid(p->emotion) || !strcmp(p->emotion, "neutral") ||
                            !strcmp(p->emotion, "base")))
            st = es_error(ES_ERR_FORMAT,
                          "%s:%d: emotion '%.60s' is not a valid name (1..%d of [A-Za-z0-9_-], not "
                          "'neutral' or 'base')",
                          name, line, p->emotion, ES_EV_MAX_NAME);
    }
    if (st == ES_OK && count == 0)
        st = es_error(ES_ERR_FORMAT, "%s: no pairs (the file is empty)", name);
    if (st != ES_OK) {
        es_extract_pairs_free(v, count);
        return st;
    }
    *pairs = v;
    *n = count;
    return ES_OK;
}

es_status es_extract_pairs_load(const char *path, es_extract_pair **pairs, int *n) {
    if (!path) return es_error(ES_ERR_INVALID_ARG, "extract: NULL path");
    char *buf = NULL;
    size_t len = 0;
    es_status st = es_file_read(path, MAX_FILE_BYTES, &buf, &len);
    if (st == ES_OK) st = es_extract_pairs_parse(buf, len, path, pairs, n);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* Checkpoints                                                                           */
/* ------------------------------------------------------------------------------------ */

#define CKPT_MAGIC "ESXCKPT1"
#define CKPT_REC_MAGIC 0x52435845u
#define CKPT_MAX_SETTINGS (1u << 20)

struct es_extract_ckpt {
    FILE *f;
    char *path;
    int n_layer, n_embd;
    size_t rec_floats; /* n_layer * n_embd + n_layer */
    float *buf;        /* [rec_floats] */
};

void es_extract_ckpt_close(es_extract_ckpt *c) {
    if (!c) return;
    if (c->f) fclose(c->f);
    free(c->path);
    free(c->buf);
    free(c);
}

static es_status write_header(es_extract_ckpt *c, const char *settings) {
    uint32_t hdr[3] = {(uint32_t)c->n_layer, (uint32_t)c->n_embd, (uint32_t)strlen(settings)};
    uint64_t h = es_fnv1a(ES_FNV_INIT, CKPT_MAGIC, 8);
    h = es_fnv1a(h, hdr, sizeof hdr);
    h = es_fnv1a(h, settings, hdr[2]);
    if (fwrite(CKPT_MAGIC, 1, 8, c->f) != 8 || fwrite(hdr, sizeof hdr, 1, c->f) != 1 ||
        fwrite(settings, 1, hdr[2], c->f) != hdr[2] || fwrite(&h, sizeof h, 1, c->f) != 1 ||
        fflush(c->f) != 0)
        return es_error(ES_ERR_IO, "%s: cannot write: %s", c->path, strerror(errno));
    return ES_OK;
}

/* The first line where two settings texts differ (for the mismatch message). */
static void first_diff(const char *a, const char *b, char *out, size_t cap) {
    while (*a && *a == *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la)) break;
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    int la = (int)(ea ? (size_t)(ea - a) : strlen(a)),
        lb = (int)(eb ? (size_t)(eb - b) : strlen(b));
    snprintf(out, cap, "checkpoint has '%.*s', this run '%.*s'", ES_MIN(la, 200), a,
             ES_MIN(lb, 200), b);
}

/* Reads and checks the header of an existing checkpoint; leaves f after it. */
static es_status read_header(es_extract_ckpt *c, const char *settings) {
    char magic[8];
    uint32_t hdr[3];
    uint64_t h_file;
    if (fread(magic, 1, 8, c->f) != 8 || memcmp(magic, CKPT_MAGIC, 8) ||
        fread(hdr, sizeof hdr, 1, c->f) != 1)
        return es_error(ES_ERR_FORMAT, "%s: not an emosteer extraction checkpoint", c->path);
    if (hdr[2] > CKPT_MAX_SETTINGS)
        return es_error(ES_ERR_FORMAT, "%s: settings of %u bytes (corrupt header)", c->path,
                        hdr[2]);
    char *s = malloc((size_t)hdr[2] + 1);
    if (!s) return es_error(ES_ERR_NOMEM, "%s: out of memory", c->path);
    es_status st = ES_OK;
    if (fread(s, 1, hdr[2], c->f) != hdr[2] || fread(&h_file, sizeof h_file, 1, c->f) != 1) {
        st = es_error(ES_ERR_FORMAT, "%s: truncated header", c->path);
    } else {
        s[hdr[2]] = '\0';
        uint64_t h = es_fnv1a(ES_FNV_INIT, CKPT_MAGIC, 8);
        h = es_fnv1a(h, hdr, sizeof hdr);
        h = es_fnv1a(h, s, hdr[2]);
        if (h != h_file)
            st = es_error(ES_ERR_FORMAT, "%s: header checksum mismatch", c->path);
        else if (hdr[0] != (uint32_t)c->n_layer || hdr[1] != (uint32_t)c->n_embd)
            st = es_error(ES_ERR_INVALID_ARG,
                          "%s: written for %u layers x %u, this model has %d x %d", c->path, hdr[0],
                          hdr[1], c->n_layer, c->n_embd);
        else if (strlen(s) != hdr[2] || strcmp(s, settings)) {
            char diff[512];
            first_diff(s, settings, diff, sizeof diff);
            st = es_error(
                ES_ERR_INVALID_ARG,
                "%s: written by a run with other settings (%s); remove it or run without --resume",
                c->path, diff);
        }
    }
    free(s);
    return st;
}

static uint64_t record_hash(const uint32_t rh[4], const float *buf, size_t n) {
    return es_fnv1a(es_fnv1a(ES_FNV_INIT, rh, 4 * sizeof *rh), buf, n * sizeof *buf);
}

es_status es_extract_ckpt_open(const char *path, const char *settings, int n_layer, int n_embd,
                               bool resume, es_extract_ckpt_fn fn, void *user, int *n_loaded,
                               es_extract_ckpt **out) {
    if (!path || !settings || !out || n_layer < 1 || n_embd < 1)
        return es_error(ES_ERR_INVALID_ARG, "extract: bad checkpoint arguments");
    if (strlen(settings) > CKPT_MAX_SETTINGS)
        return es_error(ES_ERR_INVALID_ARG, "extract: checkpoint settings too long");
    es_extract_ckpt *c = es_calloc(1, sizeof *c);
    if (!c) return ES_ERR_NOMEM;
    c->n_layer = n_layer;
    c->n_embd = n_embd;
    c->rec_floats = (size_t)n_layer * (size_t)n_embd + (size_t)n_layer;
    c->path = es_strdup(path);
    c->buf = malloc(c->rec_floats * sizeof *c->buf);
    es_status st = ES_OK;
    int loaded = 0;
    if (!c->path || !c->buf) {
        st = es_error(ES_ERR_NOMEM, "extract: out of memory");
        goto fail;
    }
    if (resume && (c->f = fopen(path, "r+b")) != NULL) {
        if ((st = read_header(c, settings)) != ES_OK) goto fail;
        long good = ftell(c->f);
        for (;;) {
            uint32_t rh[4];
            uint64_t h;
            if (fread(rh, sizeof rh, 1, c->f) != 1 || rh[0] != CKPT_REC_MAGIC || rh[3] != 0) break;
            if (fread(c->buf, sizeof *c->buf, c->rec_floats, c->f) != c->rec_floats) break;
            if (fread(&h, sizeof h, 1, c->f) != 1 || h != record_hash(rh, c->buf, c->rec_floats))
                break;
            if (rh[1] > INT32_MAX || rh[2] > INT32_MAX) break;
            if (fn) {
                const float *mean = c->buf, *norm = c->buf + (size_t)n_layer * (size_t)n_embd;
                if ((st = fn(user, (int)rh[1], (int)rh[2], mean, norm)) != ES_OK) goto fail;
            }
            loaded++;
            good = ftell(c->f);
        }
        /* drop a torn or corrupt tail, then append after the last good record */
        if (good < 0 || fflush(c->f) != 0 || ftruncate(fileno(c->f), (off_t)good) != 0 ||
            fseek(c->f, good, SEEK_SET) != 0) {
            st = es_error(ES_ERR_IO, "%s: cannot cut the file after its last record: %s", path,
                          strerror(errno));
            goto fail;
        }
    } else {
        if (resume && errno != ENOENT) {
            st = es_error(ES_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        if (!(c->f = fopen(path, "w+b"))) {
            st = es_error(ES_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
            goto fail;
        }
        if ((st = write_header(c, settings)) != ES_OK) goto fail;
    }
    if (n_loaded) *n_loaded = loaded;
    *out = c;
    return ES_OK;
fail:
    es_extract_ckpt_close(c);
    return st;
}

es_status es_extract_ckpt_append(es_extract_ckpt *c, int sample, int n_resp, const float *mean,
                                 const float *norm) {
    if (!c || !mean || sample < 0 || n_resp < 0)
        return es_error(ES_ERR_INVALID_ARG, "extract: bad checkpoint record");
    const size_t nm = (size_t)c->n_layer * (size_t)c->n_embd;
    memcpy(c->buf, mean, nm * sizeof *mean);
    if (norm)
        memcpy(c->buf + nm, norm, (size_t)c->n_layer * sizeof *norm);
    else
        memset(c->buf + nm, 0, (size_t)c->n_layer * sizeof *c->buf);
    uint32_t rh[4] = {CKPT_REC_MAGIC, (uint32_t)sample, (uint32_t)n_resp, 0};
    uint64_t h = record_hash(rh, c->buf, c->rec_floats);
    if (fwrite(rh, sizeof rh, 1, c->f) != 1 ||
        fwrite(c->buf, sizeof *c->buf, c->rec_floats, c->f) != c->rec_floats ||
        fwrite(&h, sizeof h, 1, c->f) != 1 || fflush(c->f) != 0)
        return es_error(ES_ERR_IO, "%s: cannot write: %s", c->path, strerror(errno));
    return ES_OK;
}
