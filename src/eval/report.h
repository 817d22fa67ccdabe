/* report.h — internal part of report.html; the page and its parameters are public
 * (emosteer.h, "Evaluation: report"). */
#ifndef ES_REPORT_H
#define ES_REPORT_H

#include "eval_metrics.h"

#include <stddef.h>

/* HTML-escapes s (& < > " ' -> entities) after replacing invalid UTF-8 with U+FFFD.
 * malloc'ed; NULL on allocation failure; NULL s gives "". */
char *es_html_escape(const char *s);

#endif /* ES_REPORT_H */
