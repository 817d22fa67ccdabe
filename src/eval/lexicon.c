/*
 * lexicon.c — the emotion lexicon scorer: word lists in a hash table, a one-pass
 * scorer with a 3-word window for negators and boosters. Rules in lexicon.h.
 */
#include "lexicon.h"

#include "file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEX_MAX_WORD 64 /* longer words never match */
#define LEX_WINDOW 3    /* negators and boosters look back this many words */

static const char *const k_emotion_names[ES_EMO_N_LABELS] = {"anger", "disgust", "fear",
                                                             "joy",   "sadness", "neutral"};

const char *es_emotion_name(es_emotion e) {
    return ((int)e >= 0 && (int)e < ES_EMO_N_LABELS) ? k_emotion_names[e] : "unknown";
}

es_status es_emotion_parse(const char *name, es_emotion *out) {
    if (name == NULL || out == NULL) return es_error(ES_ERR_INVALID_ARG, "lexicon: emotion: NULL");
    for (int e = 0; e < ES_EMO_N_LABELS; e++)
        if (strcmp(name, k_emotion_names[e]) == 0) {
            *out = (es_emotion)e;
            return ES_OK;
        }
    return es_error(
        ES_ERR_INVALID_ARG,
        "unknown label '%.64s' (expected anger, disgust, fear, joy, sadness or neutral)", name);
}

/* ---- the table ---- */

typedef struct lex_entry {
    char *word;              /* owned, NUL-terminated; NULL = empty slot */
    float emo[ES_EMO_COUNT]; /* weight per emotion (0 = none) */
    float valence;           /* VADER mean valence */
    bool has_emo, has_valence;
} lex_entry;

struct es_lexicon {
    lex_entry *slots; /* [cap], open addressing, linear probing */
    size_t cap;       /* power of two */
    size_t n;         /* used slots */
    int n_emo_words, n_val_words;
};

static uint64_t hash_word(const char *w, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)w[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const lex_entry *lookup(const es_lexicon *lex, const char *w, size_t len) {
    size_t i = hash_word(w, len) & (lex->cap - 1);
    while (lex->slots[i].word) {
        if (strncmp(lex->slots[i].word, w, len) == 0 && lex->slots[i].word[len] == '\0')
            return &lex->slots[i];
        i = (i + 1) & (lex->cap - 1);
    }
    return NULL;
}

static es_status grow(es_lexicon *lex) {
    size_t cap = lex->cap ? lex->cap * 2 : 1024;
    lex_entry *slots = es_calloc(cap, sizeof *slots);
    if (slots == NULL) return es_error(ES_ERR_NOMEM, "lexicon: out of memory");
    for (size_t k = 0; k < lex->cap; k++) {
        if (lex->slots[k].word == NULL) continue;
        size_t i = hash_word(lex->slots[k].word, strlen(lex->slots[k].word)) & (cap - 1);
        while (slots[i].word)
            i = (i + 1) & (cap - 1);
        slots[i] = lex->slots[k];
    }
    free(lex->slots);
    lex->slots = slots;
    lex->cap = cap;
    return ES_OK;
}

/* The entry of word w[0..len), created if absent. */
static es_status entry_for(es_lexicon *lex, const char *w, size_t len, lex_entry **out) {
    if (lex->cap == 0 || (lex->n + 1) * 2 > lex->cap) {
        es_status st = grow(lex);
        if (st != ES_OK) return st;
    }
    size_t i = hash_word(w, len) & (lex->cap - 1);
    while (lex->slots[i].word) {
        if (strncmp(lex->slots[i].word, w, len) == 0 && lex->slots[i].word[len] == '\0') {
            *out = &lex->slots[i];
            return ES_OK;
        }
        i = (i + 1) & (lex->cap - 1);
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) return es_error(ES_ERR_NOMEM, "lexicon: out of memory");
    memcpy(copy, w, len);
    copy[len] = '\0';
    memset(&lex->slots[i], 0, sizeof lex->slots[i]);
    lex->slots[i].word = copy;
    lex->n++;
    *out = &lex->slots[i];
    return ES_OK;
}

void es_lexicon_free(es_lexicon *lex) {
    if (lex == NULL) return;
    for (size_t i = 0; i < lex->cap; i++)
        free(lex->slots[i].word);
    free(lex->slots);
    free(lex);
}

int es_lexicon_n_emotion_words(const es_lexicon *lex) {
    return lex ? lex->n_emo_words : 0;
}
int es_lexicon_n_valence_words(const es_lexicon *lex) {
    return lex ? lex->n_val_words : 0;
}

/* ---- loading ---- */

/* Splits line[0..len) at tabs into at most n fields; returns the field count. */
static int split_tabs(const char *line, size_t len, const char **f, size_t *flen, int n) {
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && k < n; i++) {
        if (i == len || line[i] == '\t') {
            f[k] = line + start;
            flen[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    return k;
}

/* Parses a float from s[0..len) (whole field, finite). */
static bool parse_float(const char *s, size_t len, float *out) {
    char buf[64];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end == buf || *end != '\0' || errno != 0 || !isfinite(d)) return false;
    *out = (float)d;
    return true;
}

static bool word_chars_ok(const char *w, size_t len) {
    if (len == 0 || len > LEX_MAX_WORD) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)w[i];
        if (!((c >= 'a' && c <= 'z') || c == '\'')) return false;
    }
    return true;
}

/* Iterates over the lines of a text (without '\n' and a trailing '\r'). */
typedef struct line_iter {
    const char *text;
    size_t len, pos;
    size_t lineno; /* 1-based number of the line last returned */
} line_iter;

static bool next_line(line_iter *it, const char **line, size_t *llen) {
    if (it->pos >= it->len) return false;
    const char *start = it->text + it->pos;
    const char *eol = memchr(start, '\n', it->len - it->pos);
    size_t n = eol ? (size_t)(eol - start) : it->len - it->pos;
    it->pos += n + 1;
    it->lineno++;
    if (n > 0 && start[n - 1] == '\r') n--;
    *line = start;
    *llen = n;
    return true;
}

static es_status load_emotions(es_lexicon *lex, const char *text, size_t len) {
    es_status st = ES_OK;
    line_iter it = {text, len, 0, 0};
    const char *line;
    size_t llen;
    while (next_line(&it, &line, &llen)) {
        size_t lineno = it.lineno;
        if (llen == 0 || line[0] == '#') continue;
        const char *f[4];
        size_t fl[4];
        int nf = split_tabs(line, llen, f, fl, 4);
        if (nf != 3)
            return es_error(ES_ERR_FORMAT,
                            "lexicon: emotions.tsv line %zu: want word<TAB>emotion"
                            "<TAB>weight, got %d fields",
                            lineno, nf);
        if (!word_chars_ok(f[0], fl[0]))
            return es_error(ES_ERR_FORMAT,
                            "lexicon: emotions.tsv line %zu: word '%.*s' is not "
                            "1..%d lowercase letters/apostrophes",
                            lineno, (int)ES_MIN(fl[0], 64), f[0], LEX_MAX_WORD);
        int e = -1;
        for (int k = 0; k < ES_EMO_COUNT; k++)
            if (strlen(k_emotion_names[k]) == fl[1] && memcmp(k_emotion_names[k], f[1], fl[1]) == 0)
                e = k;
        if (e < 0)
            return es_error(ES_ERR_FORMAT, "lexicon: emotions.tsv line %zu: unknown emotion '%.*s'",
                            lineno, (int)ES_MIN(fl[1], 64), f[1]);
        float w;
        if (!parse_float(f[2], fl[2], &w) || !(w > 0.0f && w <= 10.0f))
            return es_error(ES_ERR_FORMAT,
                            "lexicon: emotions.tsv line %zu: weight '%.*s' is not a "
                            "number in (0, 10]",
                            lineno, (int)ES_MIN(fl[2], 64), f[2]);
        lex_entry *en;
        if ((st = entry_for(lex, f[0], fl[0], &en)) != ES_OK) return st;
        if (en->emo[e] != 0.0f)
            return es_error(ES_ERR_FORMAT,
                            "lexicon: emotions.tsv line %zu: '%s' is listed twice "
                            "for %s",
                            lineno, en->word, k_emotion_names[e]);
        if (!en->has_emo) lex->n_emo_words++;
        en->emo[e] = w;
        en->has_emo = true;
    }
    return st;
}

static es_status load_vader(es_lexicon *lex, const char *text, size_t len) {
    es_status st = ES_OK;
    line_iter it = {text, len, 0, 0};
    const char *line;
    size_t llen;
    while (next_line(&it, &line, &llen)) {
        size_t lineno = it.lineno;
        if (llen == 0) continue;
        const char *f[4];
        size_t fl[4];
        int nf = split_tabs(line, llen, f, fl, 4);
        float v;
        if (nf < 2 || fl[0] == 0 || !parse_float(f[1], fl[1], &v) || v < -4.0f || v > 4.0f)
            return es_error(ES_ERR_FORMAT,
                            "lexicon: vader_lexicon.txt line %zu: want token<TAB>"
                            "valence in [-4, 4]",
                            lineno);
        if (fl[0] > LEX_MAX_WORD) continue; /* can never match a word */
        lex_entry *en;
        if ((st = entry_for(lex, f[0], fl[0], &en)) != ES_OK) return st;
        if (!en->has_valence) lex->n_val_words++;
        en->valence = v;
        en->has_valence = true;
    }
    return st;
}

es_status es_lexicon_load_memory(const char *emotions_tsv, size_t emotions_len,
                                 const char *vader_txt, size_t vader_len, es_lexicon **out) {
    if (emotions_tsv == NULL || vader_txt == NULL || out == NULL)
        return es_error(ES_ERR_INVALID_ARG, "lexicon: load: NULL argument");
    es_lexicon *lex = es_calloc(1, sizeof *lex);
    if (lex == NULL) return ES_ERR_NOMEM;
    es_status st = load_emotions(lex, emotions_tsv, emotions_len);
    if (st == ES_OK) st = load_vader(lex, vader_txt, vader_len);
    if (st == ES_OK && lex->n_emo_words == 0)
        st = es_error(ES_ERR_FORMAT, "lexicon: emotions.tsv has no words");
    if (st != ES_OK) {
        es_lexicon_free(lex);
        return st;
    }
    *out = lex;
    return ES_OK;
}

static char *read_all(const char *path, size_t *len, es_status *st) {
    char *buf = NULL;
    *st = es_file_read(path, (size_t)1 << 30, &buf, len);
    if (*st != ES_OK) es_error_prefix(*st, "lexicon");
    return buf;
}

es_status es_lexicon_load(const char *dir, es_lexicon **out) {
    if (dir == NULL || out == NULL)
        return es_error(ES_ERR_INVALID_ARG, "lexicon: load: NULL argument");
    char path[4096];
    es_status st = ES_OK;
    size_t elen = 0, vlen = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/emotions.tsv", dir) >= sizeof path)
        return es_error(ES_ERR_INVALID_ARG, "lexicon: directory name too long");
    char *emo = read_all(path, &elen, &st);
    if (emo == NULL) return st;
    snprintf(path, sizeof path, "%s/vader_lexicon.txt", dir);
    char *vader = read_all(path, &vlen, &st);
    if (vader == NULL) {
        free(emo);
        return st;
    }
    st = es_lexicon_load_memory(emo, elen, vader, vlen, out);
    free(emo);
    free(vader);
    if (st != ES_OK) return es_error_prefix(st, "%s", dir);
    return ES_OK;
}

/* ---- scoring ---- */

#define VADER_BOOST 0.293f
#define VADER_CAPS 0.733f
#define VADER_NEGATE -0.74f
#define VADER_ALPHA 15.0f

static const char *const k_negators[] = {
    "not",     "no",     "never",  "none",   "nobody", "nothing", "neither", "nor",     "nowhere",
    "without", "cannot", "hardly", "barely", "rarely", "seldom",  "nope",    "dont",    "doesnt",
    "didnt",   "isnt",   "wasnt",  "werent", "arent",  "cant",    "couldnt", "wouldnt", "shouldnt",
    "wont",    "havent", "hasnt",  "hadnt",  "aint",   "mustnt"};
static const char *const k_boost_up[] = {
    "absolutely",   "amazingly",  "awfully",       "completely",   "deeply",       "enormously",
    "entirely",     "especially", "exceptionally", "extremely",    "greatly",      "highly",
    "hugely",       "incredibly", "intensely",     "particularly", "quite",        "really",
    "remarkably",   "so",         "thoroughly",    "totally",      "tremendously", "truly",
    "unbelievably", "utterly",    "very",          "most",         "more",         "super"};
static const char *const k_boost_down[] = {"almost",     "kinda",        "less",   "little",
                                           "marginally", "occasionally", "partly", "scarcely",
                                           "slightly",   "somewhat",     "sorta",  "mildly"};

static bool in_list(const char *const *list, size_t n, const char *w) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], w) == 0) return true;
    return false;
}

static bool is_negator(const char *w, size_t len) {
    if (len >= 3 && memcmp(w + len - 3, "n't", 3) == 0) return true;
    return in_list(k_negators, ES_ARRAY_LEN(k_negators), w);
}

static float booster(const char *w) {
    if (in_list(k_boost_up, ES_ARRAY_LEN(k_boost_up), w)) return VADER_BOOST;
    if (in_list(k_boost_down, ES_ARRAY_LEN(k_boost_down), w)) return -VADER_BOOST;
    return 0.0f;
}

/* Length in bytes of an apostrophe at s[0..n) (' or U+2019), else 0. */
static size_t apostrophe_len(const unsigned char *s, size_t n) {
    if (n >= 1 && s[0] == '\'') return 1;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 && s[2] == 0x99) return 3;
    return 0;
}

/* Length of a word character at s[0..n): ASCII letter/digit (1), a UTF-8 sequence that
 * is not U+00A0 or general punctuation U+2000..U+206F (its length), else 0. */
static size_t word_char_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    if (c < 0x80) return 0;
    if (c == 0xC2 && n >= 2 && s[1] == 0xA0) return 0;
    if (c == 0xE2 && n >= 2 && (s[1] == 0x80 || s[1] == 0x81)) return 0;
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len <= n ? len : n;
}

typedef struct word_info {
    bool negator;
    float boost;
} word_info;

es_status es_lexicon_score_text(const es_lexicon *lex, const char *text, size_t len,
                                es_lexicon_score *out) {
    if (lex == NULL || out == NULL || (text == NULL && len > 0))
        return es_error(ES_ERR_INVALID_ARG, "lexicon: score: NULL argument");
    es_lexicon_score sc;
    memset(&sc, 0, sizeof sc);
    const unsigned char *s = (const unsigned char *)text;
    word_info win[LEX_WINDOW]; /* the previous words, most recent at [(n-1) % LEX_WINDOW] */
    memset(win, 0, sizeof win);
    /* valence parts: [0] before the first "but", [1] after; caps bonus kept apart */
    double val[2] = {0, 0}, caps[2] = {0, 0};
    int part = 0, n_caps = 0, n_alpha_words = 0, n_excl = 0, n_quest = 0;
    char w[LEX_MAX_WORD + 1];
    size_t i = 0;
    while (i < len) {
        if (s[i] == '!') n_excl++;
        if (s[i] == '?') n_quest++;
        size_t cl = word_char_len(s + i, len - i);
        if (cl == 0) {
            i++;
            continue;
        }
        /* a word: word chars, with apostrophes between word chars */
        size_t wl = 0;
        bool fits = true, all_upper = true, has_alpha = false;
        while (i < len) {
            cl = word_char_len(s + i, len - i);
            size_t al = cl ? 0 : apostrophe_len(s + i, len - i);
            if (cl == 0 &&
                (al == 0 || i + al >= len || word_char_len(s + i + al, len - i - al) == 0))
                break;
            if (cl == 0) {
                if (wl < LEX_MAX_WORD)
                    w[wl++] = '\'';
                else
                    fits = false;
                i += al;
                continue;
            }
            for (size_t k = 0; k < cl; k++) {
                unsigned char c = s[i + k];
                if (c >= 'A' && c <= 'Z') {
                    has_alpha = true;
                    c = (unsigned char)(c - 'A' + 'a');
                } else if (c >= 'a' && c <= 'z') {
                    has_alpha = true;
                    all_upper = false;
                }
                if (wl < LEX_MAX_WORD)
                    w[wl++] = (char)c;
                else
                    fits = false;
            }
            i += cl;
        }
        w[wl] = '\0';
        sc.n_words++;
        bool caps_word = has_alpha && all_upper && wl >= 2;
        if (has_alpha) n_alpha_words++;
        if (caps_word) n_caps++;

        bool negated = false;
        float boost_sum = 0.0f;
        int n_prev = sc.n_words - 1 < LEX_WINDOW ? sc.n_words - 1 : LEX_WINDOW;
        for (int d = 1; d <= n_prev; d++) {
            const word_info *p = &win[(sc.n_words - 1 - d) % LEX_WINDOW];
            negated |= p->negator;
            boost_sum += p->boost * (d == 1 ? 1.0f : d == 2 ? 0.95f : 0.9f);
        }
        word_info cur = {false, 0.0f};
        const lex_entry *en = fits ? lookup(lex, w, wl) : NULL;
        if (fits) {
            cur.negator = is_negator(w, wl);
            cur.boost = booster(w);
        }
        if (fits && part == 0 && strcmp(w, "but") == 0) part = 1;
        if (en && en->has_emo) {
            if (negated) {
                sc.n_negated++;
            } else {
                sc.n_emotion_words++;
                for (int e = 0; e < ES_EMO_COUNT; e++)
                    if (en->emo[e] > 0.0f) {
                        sc.count[e]++;
                        sc.weight[e] += en->emo[e];
                    }
            }
        }
        if (en && en->has_valence && cur.boost == 0.0f && en->valence != 0.0f) {
            float v = en->valence;
            float sign = v > 0 ? 1.0f : -1.0f;
            v += sign * boost_sum;
            float factor = negated ? VADER_NEGATE : 1.0f;
            val[part] += factor * v;
            if (caps_word) caps[part] += factor * sign * VADER_CAPS;
        }
        win[(sc.n_words - 1) % LEX_WINDOW] = cur;
    }
    bool mixed_caps = n_caps > 0 && n_caps < n_alpha_words;
    double sum;
    double pre = val[0] + (mixed_caps ? caps[0] : 0.0),
           post = val[1] + (mixed_caps ? caps[1] : 0.0);
    sum = part ? 0.5 * pre + 1.5 * post : pre;
    if (sum != 0.0) {
        double emph = 0.292 * ES_MIN(n_excl, 4);
        if (n_quest > 1) emph += n_quest <= 3 ? 0.18 * n_quest : 0.96;
        sum += sum > 0 ? emph : -emph;
    }
    double comp = sum / sqrt(sum * sum + VADER_ALPHA);
    sc.valence = (float)(comp < -1.0 ? -1.0 : comp > 1.0 ? 1.0 : comp);
    float total = 0.0f;
    for (int e = 0; e < ES_EMO_COUNT; e++)
        total += sc.weight[e];
    sc.top = ES_EMO_NEUTRAL;
    if (total > 0.0f) {
        int best = 0;
        for (int e = 0; e < ES_EMO_COUNT; e++) {
            sc.share[e] = sc.weight[e] / total;
            if (sc.weight[e] > sc.weight[best]) best = e;
        }
        sc.top = best;
    }
    *out = sc;
    return ES_OK;
}
