/* report.c — report.html: one self-contained page of inline CSS and SVG charts drawn
 * from es_eval_results (see report.h). */
#include "report.h"

#include "strbuf.h"

#include "common.h"
#include "eval_io.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends s escaped for HTML text and attribute values, invalid UTF-8 replaced. */
static void sb_esc(es_strbuf *b, const char *s) {
    char *clean = es_utf8_sanitize(s);
    if (!clean) {
        b->failed = true;
        return;
    }
    const char *run = clean;
    for (const char *p = clean;; p++) {
        const char *ent = NULL;
        switch (*p) {
        case '&': ent = "&amp;"; break;
        case '<': ent = "&lt;"; break;
        case '>': ent = "&gt;"; break;
        case '"': ent = "&quot;"; break;
        case '\'': ent = "&#39;"; break;
        default: break;
        }
        if (ent || !*p) {
            es_strbuf_append(b, run, (size_t)(p - run));
            if (!*p) break;
            es_strbuf_puts(b, ent);
            run = p + 1;
        }
    }
    free(clean);
}

char *es_html_escape(const char *s) {
    es_strbuf b = {0};
    es_strbuf_reserve(&b, 0);
    sb_esc(&b, s);
    if (b.failed) {
        free(b.data);
        es_error(ES_ERR_NOMEM, "report: out of memory escaping text");
        return NULL;
    }
    return b.data;
}

/* A number with fmt, or an en dash for NaN. */
static void sb_num(es_strbuf *b, const char *fmt, double v) {
    if (isfinite(v))
        es_strbuf_printf(b, fmt, v);
    else
        es_strbuf_puts(b, "&#8211;");
}

/* ---- colours ------------------------------------------------------------------- */

static const char *emotion_color(const char *name, int index) {
    static const struct {
        const char *name, *color;
    } known[] = {
        {"joy", "#e0a800"},     {"anger", "#d62728"},   {"disgust", "#2ca02c"},
        {"fear", "#7b4fb5"},    {"sadness", "#1f77b4"}, {"surprise", "#ff7f0e"},
        {"neutral", "#7f7f7f"}, {"love", "#e377c2"},    {"trust", "#17becf"},
    };
    static const char *fallback[] = {"#8c564b", "#bcbd22", "#393b79",
                                     "#637939", "#843c39", "#7b4173"};
    for (size_t i = 0; i < ES_ARRAY_LEN(known); i++)
        if (name && !strcmp(name, known[i].name)) return known[i].color;
    return fallback[(size_t)(index < 0 ? 0 : index) % ES_ARRAY_LEN(fallback)];
}

/* ---- line charts ------------------------------------------------------------------ */

/* What a panel plots from a cell: value and spread (NaN = none). */
typedef double (*cell_value_fn)(const es_eval_cell *c, double *spread);

static double v_target(const es_eval_cell *c, double *sd) {
    *sd = c->target_prob.sd;
    return c->target_prob.mean;
}
static double v_eas(const es_eval_cell *c, double *sd) {
    *sd = c->eas.sd;
    return c->eas.mean;
}
static double v_rep4(const es_eval_cell *c, double *sd) {
    *sd = c->rep4.sd;
    return c->rep4.mean;
}
static double v_degen(const es_eval_cell *c, double *sd) {
    *sd = NAN;
    return c->degenerate_share;
}
static double v_distinct2(const es_eval_cell *c, double *sd) {
    *sd = c->distinct2.sd;
    return c->distinct2.mean;
}
static double v_ppl(const es_eval_cell *c, double *sd) {
    *sd = NAN;
    return c->ppl;
}
static double v_topic(const es_eval_cell *c, double *sd) {
    *sd = c->topic.sd;
    return c->topic.mean;
}

typedef struct panel {
    double x, y, w, h; /* where in the SVG */
    const char *title;
    const char *ylabel;
    cell_value_fn value;
    double y_min, y_max; /* hard bounds of the axis (e.g. 0 and 1 for shares), NaN = none */
    bool y_zero;         /* include 0 in the axis */
} panel;

/* A "nice" step (1, 2 or 5 x 10^k) near x > 0. */
static double nice_step(double x) {
    double e = floor(log10(x)), f = x / pow(10, e);
    double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return nf * pow(10, e);
}

static void tick_label(char *buf, size_t n, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6) decimals = 6;
    if (fabs(v) < step * 1e-6) v = 0;
    snprintf(buf, n, "%.*f", decimals, v);
}

static void draw_line_panel(es_strbuf *b, const es_eval_results *r, const panel *p) {
    const double ml = 56, mr = 14, mt = 26, mb = 40; /* margins */
    double px = p->x + ml, py = p->y + mt, pw = p->w - ml - mr, ph = p->h - mt - mb;
    es_strbuf_printf(b, "<g class=\"panel\"><text x=\"%.1f\" y=\"%.1f\" class=\"ptitle\">",
                     p->x + ml, p->y + 16);
    sb_esc(b, p->title);
    es_strbuf_puts(b, "</text>\n");

    /* y range over the finite means (and mean +- spread) */
    double lo = INFINITY, hi = -INFINITY;
    for (int e = 0; e < r->n_emotions; e++)
        for (int a = 0; a < r->n_alphas; a++) {
            double sd, m = p->value(es_eval_cell_at(r, e, a), &sd);
            if (!isfinite(m)) continue;
            double s = isfinite(sd) ? sd : 0;
            lo = fmin(lo, m - s);
            hi = fmax(hi, m + s);
        }
    if (!isfinite(lo)) {
        es_strbuf_printf(
            b,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" class=\"nodata\">no data</text></g>\n",
            px, py, pw, ph, px + pw / 2, py + ph / 2);
        return;
    }
    if (p->y_zero) lo = fmin(lo, 0), hi = fmax(hi, 0);
    if (isfinite(p->y_min)) lo = fmax(lo, p->y_min);
    if (isfinite(p->y_max)) hi = fmin(hi, p->y_max);
    if (!(hi > lo)) {
        double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 0.5;
        lo -= pad;
        hi += pad;
    }
    double step = nice_step((hi - lo) / 5);
    lo = floor(lo / step + 1e-9) * step;
    hi = ceil(hi / step - 1e-9) * step;

    double amin = r->alphas[0], amax = r->alphas[r->n_alphas - 1];
    if (!(amax > amin)) amin -= 1, amax += 1;
    double xpad = (amax - amin) * 0.04;
    amin -= xpad;
    amax += xpad;
#define SX(v) (px + ((v)-amin) / (amax - amin) * pw)
#define SY(v) (py + ph - (fmin(fmax((v), lo), hi) - lo) / (hi - lo) * ph)

    /* grid, axes, ticks */
    es_strbuf_printf(
        b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n", px, py,
        pw, ph);
    for (int k = 0; k <= 12; k++) {
        double v = lo + k * step;
        if (v > hi + step * 1e-6) break;
        char lab[32];
        tick_label(lab, sizeof lab, v, step);
        es_strbuf_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" class=\"ytick\">%s</text>\n",
                         px, SY(v), px + pw, SY(v), px - 5, SY(v) + 4, lab);
    }
    for (int a = 0; a < r->n_alphas; a++)
        es_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"xtick\">%g</text>\n",
                         SX(r->alphas[a]), py + ph + 15, r->alphas[a]);
    if (amin < 0 && amax > 0)
        es_strbuf_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"zero\"/>\n",
                         SX(0.0), py, SX(0.0), py + ph);
    es_strbuf_printf(
        b, "<text x=\"%.1f\" y=\"%.1f\" class=\"xlabel\">alpha (steering strength)</text>\n",
        px + pw / 2, py + ph + 33);
    es_strbuf_printf(b, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" class=\"ylabel\">",
                     p->x + 13, py + ph / 2);
    sb_esc(b, p->ylabel);
    es_strbuf_puts(b, "</text>\n");

    /* per emotion: the +-sd band under the mean line, over runs of finite points */
    for (int e = 0; e < r->n_emotions; e++) {
        const char *color = emotion_color(r->emotions[e], e);
        for (int a = 0; a < r->n_alphas;) {
            int end = a;
            double sd, m;
            while (end < r->n_alphas && isfinite(m = p->value(es_eval_cell_at(r, e, end), &sd)) &&
                   isfinite(sd))
                end++;
            if (end - a >= 2) {
                es_strbuf_printf(b, "<polygon class=\"band\" fill=\"%s\" points=\"", color);
                for (int k = a; k < end; k++) {
                    m = p->value(es_eval_cell_at(r, e, k), &sd);
                    es_strbuf_printf(b, "%.1f,%.1f ", SX(r->alphas[k]), SY(m + sd));
                }
                for (int k = end - 1; k >= a; k--) {
                    m = p->value(es_eval_cell_at(r, e, k), &sd);
                    es_strbuf_printf(b, "%.1f,%.1f ", SX(r->alphas[k]), SY(m - sd));
                }
                es_strbuf_puts(b, "\"/>\n");
            }
            a = end + 1;
        }
    }
    for (int e = 0; e < r->n_emotions; e++) {
        const char *color = emotion_color(r->emotions[e], e);
        es_strbuf_printf(b, "<path class=\"line\" stroke=\"%s\" d=\"", color);
        bool pen = false;
        for (int a = 0; a < r->n_alphas; a++) {
            double sd, m = p->value(es_eval_cell_at(r, e, a), &sd);
            if (!isfinite(m)) {
                pen = false;
                continue;
            }
            es_strbuf_printf(b, "%c%.1f %.1f ", pen ? 'L' : 'M', SX(r->alphas[a]), SY(m));
            pen = true;
        }
        es_strbuf_puts(b, "\"/>\n");
        for (int a = 0; a < r->n_alphas; a++) {
            double sd, m = p->value(es_eval_cell_at(r, e, a), &sd);
            if (!isfinite(m)) continue;
            es_strbuf_printf(
                b, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>",
                SX(r->alphas[a]), SY(m), color);
            sb_esc(b, r->emotions[e]);
            es_strbuf_printf(b, ", alpha %g: %.4g", r->alphas[a], m);
            if (isfinite(sd)) es_strbuf_printf(b, " &#177; %.4g", sd);
            es_strbuf_puts(b, "</title></circle>\n");
        }
    }
#undef SX
#undef SY
    es_strbuf_puts(b, "</g>\n");
}

/* Legend across the top of an SVG of width w: one swatch per emotion. */
static void draw_legend(es_strbuf *b, const es_eval_results *r, double w) {
    double x = 56, y = 14;
    es_strbuf_puts(b, "<g class=\"legend\">");
    for (int e = 0; e < r->n_emotions; e++) {
        double tw = 22 + 7.2 * (double)ES_MIN(strlen(r->emotions[e]), (size_t)24) + 18;
        if (x + tw > w && x > 56) {
            x = 56;
            y += 18;
        }
        es_strbuf_printf(b,
                         "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"10\" fill=\"%s\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\">",
                         x, y - 9, emotion_color(r->emotions[e], e), x + 21, y);
        char name[32];
        snprintf(name, sizeof name, "%.24s", r->emotions[e]);
        sb_esc(b, name);
        es_strbuf_puts(b, "</text>");
        x += tw;
    }
    es_strbuf_puts(b, "</g>\n");
}

/* An SVG of line panels in a grid of `cols` columns under a legend. */
static void line_chart(es_strbuf *b, const es_eval_results *r, const char *label, panel *panels,
                       int n, int cols) {
    const double pw = 520, ph = 320, legend_h = 20.0 + 18.0 * (r->n_emotions / 7);
    int rows = (n + cols - 1) / cols;
    double w = pw * ES_MIN(n, cols), h = legend_h + ph * rows;
    es_strbuf_printf(
        b,
        "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"",
        w, h, w, h);
    sb_esc(b, label);
    es_strbuf_puts(b, "\">\n");
    draw_legend(b, r, w);
    for (int i = 0; i < n; i++) {
        panels[i].x = pw * (i % cols);
        panels[i].y = legend_h + ph * (i / cols);
        panels[i].w = pw;
        panels[i].h = ph;
        draw_line_panel(b, r, &panels[i]);
    }
    es_strbuf_puts(b, "</svg>\n");
}

/* ---- heat maps ---------------------------------------------------------------------- */

static void heat_color(double share, char out[8]) {
    /* white (#f7fbff) -> dark blue (#08306b) */
    double t = isfinite(share) ? fmin(fmax(share, 0), 1) : 0;
    int rr = (int)lround(0xf7 + (0x08 - 0xf7) * t), gg = (int)lround(0xfb + (0x30 - 0xfb) * t),
        bb = (int)lround(0xff + (0x6b - 0xff) * t);
    snprintf(out, 8, "#%02x%02x%02x", rr, gg, bb);
}

static void draw_heatmap(es_strbuf *b, const es_eval_results *r, int a, double x0, double y0) {
    const double cw = 58, ch = 30, left = 84, top = 56;
    es_strbuf_printf(
        b, "<g class=\"heat\"><text x=\"%.1f\" y=\"%.1f\" class=\"ptitle\">alpha = %g, accuracy ",
        x0 + left, y0 + 16, r->alphas[a]);
    sb_num(b, "%.0f%%", r->accuracy[a] * 100);
    es_strbuf_puts(b, "</text>\n");
    es_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"axnote\">detected &#8594;</text>\n",
                     x0 + left, y0 + 32);
    for (int l = 0; l < r->n_labels; l++) {
        char name[16];
        snprintf(name, sizeof name, "%.9s", r->labels[l]);
        es_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"collab\">",
                         x0 + left + cw * l + cw / 2, y0 + top - 6);
        sb_esc(b, name);
        es_strbuf_puts(b, "</text>\n");
    }
    for (int e = 0; e < r->n_emotions; e++) {
        const double *row = es_eval_confusion_row(r, a, e);
        double sum = 0;
        for (int l = 0; l < r->n_labels; l++)
            sum += row[l];
        char name[16];
        snprintf(name, sizeof name, "%.10s", r->emotions[e]);
        es_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"rowlab\">", x0 + left - 6,
                         y0 + top + ch * e + ch / 2 + 4);
        sb_esc(b, name);
        es_strbuf_puts(b, "</text>\n");
        for (int l = 0; l < r->n_labels; l++) {
            double share = sum > 0 ? row[l] / sum : NAN;
            char color[8];
            heat_color(share, color);
            double cx = x0 + left + cw * l, cy = y0 + top + ch * e;
            bool diag = r->emotion_label[e] == l;
            es_strbuf_printf(
                b,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\" "
                "class=\"%s\"/>",
                cx, cy, cw, ch, color, diag ? "cell diag" : "cell");
            bool whole = fabs(row[l] - round(row[l])) < 1e-9;
            es_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"%s\">", cx + cw / 2,
                             cy + ch / 2 + 4, isfinite(share) && share > 0.5 ? "num light" : "num");
            es_strbuf_printf(b, whole ? "%.0f" : "%.1f", row[l]);
            es_strbuf_puts(b, "</text>\n");
        }
    }
    es_strbuf_printf(
        b,
        "<text transform=\"translate(%.1f %.1f) rotate(-90)\" class=\"axnote\">steered to "
        "&#8594;</text>\n",
        x0 + 12, y0 + top + ch * r->n_emotions);
    es_strbuf_puts(b, "</g>\n");
}

static void heatmaps(es_strbuf *b, const es_eval_results *r, int max_maps) {
    int idx[64], n = 0;
    for (int a = r->n_alphas - 1; a >= 0 && n < ES_MIN(max_maps, 64); a--)
        if (r->alphas[a] > 0) idx[n++] = a;
    if (n == 0 && r->n_alphas > 0)
        idx[n++] = r->n_alphas - 1;   /* no positive alpha: show the largest */
    for (int i = 0; i < n / 2; i++) { /* ascending alpha */
        int t = idx[i];
        idx[i] = idx[n - 1 - i];
        idx[n - 1 - i] = t;
    }
    const double mw = 84 + 58.0 * r->n_labels + 24, mh = 56 + 30.0 * r->n_emotions + 16;
    int cols = ES_MAX(1, (int)(1100 / mw));
    int rows = (n + cols - 1) / cols;
    double w = mw * ES_MIN(n, cols), h = mh * rows;
    es_strbuf_printf(b,
                     "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
                     "aria-label=\"confusion matrices\">\n",
                     w, h, w, h);
    for (int i = 0; i < n; i++)
        draw_heatmap(b, r, idx[i], mw * (i % cols), mh * (i / cols));
    es_strbuf_puts(b, "</svg>\n");
}

/* ---- page --------------------------------------------------------------------------- */

static const char *css =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;"
    "max-width:1120px;margin:24px auto;padding:0 16px;background:#fff}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid "
    "#ddd}"
    "p.note{color:#555;margin:4px 0 10px;max-width:900px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;"
    "vertical-align:top;text-align:left}th{background:#f4f4f4}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}"
    "table.samples td.text{white-space:pre-wrap;max-width:460px;word-break:break-word}"
    "table.samples td.prompt{max-width:260px;color:#444}td.qid{white-space:nowrap}"
    "span.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:5px}"
    "svg{display:block;max-width:100%;height:auto;margin:6px 0}"
    "svg text{font-family:system-ui,sans-serif;font-size:12px;fill:#333}"
    ".ptitle{font-size:13px;font-weight:600}.frame{fill:#fcfcfc;stroke:#bbb}"
    ".grid{stroke:#e4e4e4}.zero{stroke:#999;stroke-dasharray:4 3}"
    ".ytick{text-anchor:end;font-size:11px}.xtick{text-anchor:middle;font-size:11px}"
    ".xlabel,.ylabel{text-anchor:middle;font-size:12px;fill:#555}"
    ".band{fill-opacity:.16;stroke:none}.line{fill:none;stroke-width:2.2}"
    ".pt{stroke:#fff;stroke-width:1}.nodata{text-anchor:middle;fill:#999}"
    ".collab{text-anchor:middle;font-size:11px}.rowlab{text-anchor:end;font-size:11px}"
    ".axnote{font-size:11px;fill:#777}.cell{stroke:#fff}.diag{stroke:#222;stroke-width:1.5}"
    ".num{text-anchor:middle;font-size:12px;fill:#111}.num.light{fill:#fff}";

static void settings_row(es_strbuf *b, const char *key, const char *value) {
    if (!value || !*value) return;
    es_strbuf_puts(b, "<tr><th>");
    sb_esc(b, key);
    es_strbuf_puts(b, "</th><td>");
    sb_esc(b, value);
    es_strbuf_puts(b, "</td></tr>\n");
}

static void settings_table(es_strbuf *b, const es_eval_results *r) {
    const es_eval_settings *s = &r->settings;
    char buf[64];
    es_strbuf_puts(b, "<table class=\"settings\">\n");
    settings_row(b, "model", s->model_name);
    settings_row(b, "model file", s->model_path);
    settings_row(b, "model sha256", s->model_sha256);
    settings_row(b, "emotion vectors", s->ev_path);
    settings_row(b, "EV sha256", s->ev_sha256);
    settings_row(b, "method", s->method);
    settings_row(b, "hook", s->hook);
    settings_row(b, "layers", s->layers);
    settings_row(b, "queries", s->query_file);
    settings_row(b, "queries sha256", s->query_sha256);
    /* the protocol (which queries each emotion was asked) next to the queries */
    for (int i = 0; i < s->n_extra; i++)
        if (!strcmp(s->extra[i].key, "protocol")) settings_row(b, "protocol", s->extra[i].value);
    settings_row(b, "scorer", s->scorer);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)s->seed);
    settings_row(b, "seed", buf);
    if (s->n_samples > 0) {
        snprintf(buf, sizeof buf, "%d", s->n_samples);
        settings_row(b, "samples per query", buf);
    }
    if (s->max_tokens > 0) {
        snprintf(buf, sizeof buf, "%d", s->max_tokens);
        settings_row(b, "max tokens", buf);
    }
    for (int i = 0; i < s->n_extra; i++)
        if (strcmp(s->extra[i].key, "protocol") != 0)
            settings_row(b, s->extra[i].key, s->extra[i].value);
    snprintf(buf, sizeof buf, "%d (%d outside the table)", r->n_records, r->n_ignored);
    settings_row(b, "responses", buf);
    settings_row(b, "created", s->created);
    es_strbuf_puts(b, "</table>\n");
}

static void linearity_table(es_strbuf *b, const es_eval_results *r) {
    es_strbuf_puts(
        b, "<table class=\"linearity\"><tr><th>emotion</th><th>points</th><th>slope</th>"
           "<th>intercept</th><th>R&#178;</th><th>EAS slope</th><th>EAS R&#178;</th></tr>\n");
    for (int e = 0; e < r->n_emotions; e++) {
        const es_linearity *f = &r->linearity[e], *g = &r->linearity_eas[e];
        es_strbuf_printf(b, "<tr><td><span class=\"dot\" style=\"background:%s\"></span>",
                         emotion_color(r->emotions[e], e));
        sb_esc(b, r->emotions[e]);
        es_strbuf_printf(b, "</td><td class=\"n\">%d</td><td class=\"n\">", f->n_points);
        sb_num(b, "%.4f", f->slope);
        es_strbuf_puts(b, "</td><td class=\"n\">");
        sb_num(b, "%.4f", f->intercept);
        es_strbuf_puts(b, "</td><td class=\"n\">");
        sb_num(b, "%.3f", f->r2);
        es_strbuf_puts(b, "</td><td class=\"n\">");
        sb_num(b, "%.4f", g->slope);
        es_strbuf_puts(b, "</td><td class=\"n\">");
        sb_num(b, "%.3f", g->r2);
        es_strbuf_puts(b, "</td></tr>\n");
    }
    es_strbuf_puts(b, "</table>\n");
}

/* Appends at most max bytes of s (cut at a UTF-8 boundary, then an ellipsis), escaped. */
static void sb_esc_cut(es_strbuf *b, const char *s, int max) {
    size_t n = strlen(s);
    if (max <= 0 || n <= (size_t)max) {
        sb_esc(b, s);
        return;
    }
    size_t cut = (size_t)max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    char *head = malloc(cut + 1);
    if (!head) {
        b->failed = true;
        return;
    }
    memcpy(head, s, cut);
    head[cut] = '\0';
    sb_esc(b, head);
    free(head);
    es_strbuf_puts(b, "&#8230;");
}

static void samples_table(es_strbuf *b, const es_eval_results *r, const es_report_params *p) {
    if (r->n_samples == 0) {
        es_strbuf_puts(b, "<p class=\"note\">No sample responses were kept.</p>\n");
        return;
    }
    es_strbuf_puts(b, "<table class=\"samples\"><tr><th>emotion</th><th>alpha</th><th>query</th>"
                      "<th>prompt</th><th>response</th><th>p(target)</th><th>detected</th></tr>\n");
    int shown = ES_MIN(r->n_samples, ES_MAX(p->max_samples, 0));
    for (int k = 0; k < shown; k++) {
        /* spread the shown rows evenly over all samples */
        int i = (int)((long long)k * r->n_samples / shown);
        const es_eval_sample *s = &r->samples[i];
        es_strbuf_printf(b, "<tr><td><span class=\"dot\" style=\"background:%s\"></span>",
                         emotion_color(r->emotions[s->emotion], s->emotion));
        sb_esc(b, r->emotions[s->emotion]);
        es_strbuf_printf(b, "</td><td class=\"n\">%g</td><td class=\"qid\">", r->alphas[s->alpha]);
        sb_esc(b, s->query_id);
        es_strbuf_puts(b, "</td><td class=\"text prompt\">");
        sb_esc_cut(b, s->prompt, p->max_response_bytes);
        es_strbuf_puts(b, "</td><td class=\"text\">");
        sb_esc_cut(b, s->response, p->max_response_bytes);
        es_strbuf_puts(b, "</td><td class=\"n\">");
        sb_num(b, "%.3f", s->target_prob);
        es_strbuf_puts(b, "</td><td>");
        if (s->detected >= 0 && s->detected < r->n_labels)
            sb_esc(b, r->labels[s->detected]);
        else
            es_strbuf_puts(b, "&#8211;");
        es_strbuf_puts(b, "</td></tr>\n");
    }
    es_strbuf_puts(b, "</table>\n");
    if (shown < r->n_samples)
        es_strbuf_printf(
            b, "<p class=\"note\">%d of %d kept samples shown; all are in results.json.</p>\n",
            shown, r->n_samples);
}

static void accuracy_table(es_strbuf *b, const es_eval_results *r) {
    es_strbuf_puts(b, "<table class=\"accuracy\"><tr><th>alpha</th>");
    for (int a = 0; a < r->n_alphas; a++)
        es_strbuf_printf(b, "<th>%g</th>", r->alphas[a]);
    es_strbuf_puts(b, "</tr>\n<tr><th>accuracy</th>");
    for (int a = 0; a < r->n_alphas; a++) {
        es_strbuf_puts(b, "<td class=\"n\">");
        sb_num(b, "%.3f", r->accuracy[a]);
        es_strbuf_puts(b, "</td>");
    }
    es_strbuf_puts(b, "</tr></table>\n");
}

es_report_params es_report_default_params(void) {
    es_report_params p = {"emosteer evaluation", 60, 1200, 4};
    return p;
}

static void section_open(es_strbuf *b, const char *id, const char *title, const char *note) {
    es_strbuf_printf(b,
                     "<section class=\"chart\" id=\"%s\">\n<h2>%s</h2>\n<p class=\"note\">%s</p>\n",
                     id, title, note);
}

es_status es_report_html(const es_eval_results *r, const es_report_params *params, char **out,
                         size_t *len) {
    if (!r || !out || r->n_emotions < 1 || r->n_alphas < 1)
        return es_error(ES_ERR_INVALID_ARG, "report: empty results");
    es_report_params p = params ? *params : es_report_default_params();
    if (!p.title) p.title = "emosteer evaluation";
    es_strbuf b = {0};
    es_strbuf_puts(
        &b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>");
    sb_esc(&b, p.title);
    es_strbuf_printf(&b, "</title>\n<style>%s</style>\n</head><body>\n<h1>", css);
    sb_esc(&b, p.title);
    es_strbuf_printf(
        &b,
        "</h1>\n<p class=\"note\">emosteer %s &#183; %d emotions &#215; %d alphas &#183; "
        "%d responses</p>\n",
        ES_VERSION_STRING, r->n_emotions, r->n_alphas, r->n_records);
    es_strbuf_puts(&b, "<section id=\"settings\">\n<h2>Settings</h2>\n");
    settings_table(&b, r);
    es_strbuf_puts(&b, "</section>\n");

    section_open(&b, "emotion", "Emotion score vs alpha",
                 "Left: mean probability of the steered-to emotion (the scorer's share for that "
                 "emotion). Right: absolute emotion score (EAS), the total non-neutral emotion "
                 "mass. Lines are means over all responses of a cell, bands &#177;1 sd.");
    panel emo[2] = {
        {0, 0, 0, 0, "Target-emotion probability", "p(target emotion)", v_target, 0, 1, true},
        {0, 0, 0, 0, "Absolute emotion score (EAS)", "EAS", v_eas, 0, NAN, true},
    };
    line_chart(&b, r, "emotion score vs alpha", emo, 2, 2);
    es_strbuf_puts(&b, "</section>\n");

    section_open(
        &b, "fluency", "Fluency vs alpha",
        "rep-4: share of a response's word 4-grams that repeat an earlier one. Degenerate: "
        "rep-4 above 0.3 or fewer than 3 words. distinct-2: distinct word bigrams over "
        "bigrams. Perplexity: geometric mean under the unsteered model.");
    panel flu[4] = {
        {0, 0, 0, 0, "Repeated 4-gram share (rep-4)", "rep-4", v_rep4, 0, 1, true},
        {0, 0, 0, 0, "Degenerate responses", "share degenerate", v_degen, 0, 1, true},
        {0, 0, 0, 0, "distinct-2", "distinct-2", v_distinct2, 0, 1, true},
        {0, 0, 0, 0, "Perplexity (geometric mean)", "perplexity", v_ppl, 0, NAN, false},
    };
    line_chart(&b, r, "fluency vs alpha", flu, 4, 2);
    es_strbuf_puts(&b, "</section>\n");

    section_open(&b, "specificity", "Specificity: steered-to vs detected emotion",
                 "Rows: the emotion steered toward; columns: the scorer's top label per response "
                 "(ties split evenly; no emotion detected counts as neutral). Cells show response "
                 "counts, shaded by row share; the outlined cell is the target.");
    heatmaps(&b, r, ES_MAX(p.max_heatmaps, 1));
    accuracy_table(&b, r);
    es_strbuf_puts(&b, "</section>\n");

    section_open(&b, "topic", "Topic adherence vs alpha",
                 "Mean similarity of each response to its query, &#177;1 sd.");
    panel top[1] = {
        {0, 0, 0, 0, "Topic adherence", "similarity to query", v_topic, NAN, NAN, false}};
    line_chart(&b, r, "topic adherence vs alpha", top, 1, 1);
    es_strbuf_puts(&b, "</section>\n");

    es_strbuf_puts(&b, "<section id=\"linearity\">\n<h2>Linearity</h2>\n");
    es_strbuf_printf(&b,
                     "<p class=\"note\">Least-squares line through (alpha, mean target-emotion "
                     "probability) for alpha in [%g, %g]; R&#178; = 1 &#8722; "
                     "SS<sub>res</sub>/SS<sub>tot</sub>.</p>\n",
                     r->lin_alpha_lo, r->lin_alpha_hi);
    linearity_table(&b, r);
    es_strbuf_puts(&b, "</section>\n");

    es_strbuf_puts(&b, "<section id=\"samples\">\n<h2>Sample responses</h2>\n");
    samples_table(&b, r, &p);
    es_strbuf_puts(&b, "</section>\n</body></html>\n");

    if (b.failed) {
        free(b.data);
        return es_error(ES_ERR_NOMEM, "report: out of memory building the page");
    }
    *out = b.data;
    if (len) *len = b.len;
    return ES_OK;
}

es_status es_report_write(const es_eval_results *r, const es_report_params *params,
                          const char *path) {
    if (!path) return es_error(ES_ERR_INVALID_ARG, "report: NULL path");
    char *html;
    size_t len;
    es_status st = es_report_html(r, params, &html, &len);
    if (st != ES_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(html);
        return es_error(ES_ERR_IO, "report: cannot create %s: %s", path, strerror(errno));
    }
    bool ok = fwrite(html, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    free(html);
    if (!ok) return es_error(ES_ERR_IO, "report: cannot write %s", path);
    return ES_OK;
}
