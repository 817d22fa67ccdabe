/*
 * report.h — report.html of an evaluation: ONE self-contained page (inline CSS and
 * inline SVG; no script, no external fetch) drawn from es_eval_results
 * (eval_metrics.h), in this order:
 *
 *   settings      model, hashes, EV file, method, hook, layers, scorer, sampling
 *   emotion       target-emotion probability and EAS vs alpha: per emotion a mean line
 *                 with a +-1 sd band, one colour per emotion, legend
 *   fluency       rep-4 share, degenerate share, distinct-2 and perplexity vs alpha
 *   specificity   confusion matrices (steered-to x detected, incl. neutral) as heat
 *                 maps with counts, one per positive alpha, and accuracy per alpha
 *   topic         topic adherence vs alpha
 *   linearity     table of slope, intercept and R^2 per emotion (target prob, EAS)
 *   samples       table of sample responses; every text from the model, the queries or
 *                 the settings is HTML-escaped (it is untrusted), invalid UTF-8 is
 *                 replaced by U+FFFD
 *
 * Every chart section is a <section class="chart" id="..."> holding one <svg>. A
 * panel without finite data says "no data" instead of drawing.
 */
#ifndef ES_REPORT_H
#define ES_REPORT_H

#include "eval_metrics.h"

#include <stddef.h>

typedef struct es_report_params {
    const char *title;      /* page title (default "emosteer evaluation"); escaped */
    int max_samples;        /* rows of the sample table (default 60) */
    int max_response_bytes; /* longer responses are cut at a UTF-8 boundary + "…" (default 1200) */
    int max_heatmaps;       /* confusion matrices shown, largest positive alphas kept (default 4) */
} es_report_params;

es_report_params es_report_default_params(void);

/* The page as a malloc'ed NUL-terminated string (*out, owned by the caller; *len its
 * length, may be NULL). params may be NULL (defaults). */
es_status es_report_html(const es_eval_results *r, const es_report_params *params, char **out,
                         size_t *len);

/* Writes the page to path. */
es_status es_report_write(const es_eval_results *r, const es_report_params *params,
                          const char *path);

/* HTML-escapes s (& < > " ' -> entities) after replacing invalid UTF-8 with U+FFFD.
 * malloc'ed; NULL on allocation failure; NULL s gives "". */
char *es_html_escape(const char *s);

#endif /* ES_REPORT_H */
