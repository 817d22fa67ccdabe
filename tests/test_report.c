/* test_report.c — report.html from a synthetic run (5 emotions x alphas -1 0 1 2 4):
 * the page is well-formed (a small tag-nesting checker), self-contained (no script,
 * no external reference), has one SVG per chart section with the expected number of
 * lines and heat-map cells, and escapes untrusted text. Then, when Chromium is
 * installed, tests/report_screenshot.sh renders it: the PNG must have the window's
 * size and be far larger than a blank page's, and the DOM after Chromium's parser
 * must still hold the 4 SVGs and no <script> element.
 * With ES_REPORT_EXAMPLE_DIR set, the page and its PNG are copied there. */
#include "report.h"
#include "testutil.h"
#include "util_evalsynth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static size_t count(const char *hay, const char *needle, const char *end) {
    size_t n = 0, len = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) && (!end || p < end); p += len)
        n++;
    return n;
}

/* The text of <section ... id="ID"> up to its </section> (pointers into html). */
static bool section(const char *html, const char *id, const char **begin, const char **end) {
    char open[96];
    snprintf(open, sizeof open, "<section class=\"chart\" id=\"%s\">", id);
    *begin = strstr(html, open);
    if (!*begin) return false;
    *end = strstr(*begin, "</section>");
    return *end != NULL;
}

/* Checks that the tags of the page nest properly. Void elements and "/>" do not open;
 * <style> content is skipped; a '<' in text that does not start a tag is an error (so
 * unescaped text shows up). Returns NULL if fine, else a message. */
static const char *check_nesting(const char *html) {
    static char msg[256];
    static const char *voids[] = {"meta", "br", "img", "hr", "input", "link", "col", "wbr"};
    char stack[256][16];
    int depth = 0;
    for (const char *p = html; (p = strchr(p, '<'));) {
        if (!strncmp(p, "<!", 2)) {
            p = strchr(p, '>');
            if (!p) return "unterminated <!";
            continue;
        }
        bool closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[16];
        int n = 0;
        while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')) {
            if (n < 15) name[n++] = *q;
            q++;
        }
        name[n] = '\0';
        if (n == 0) {
            snprintf(msg, sizeof msg, "stray '<' at offset %ld: %.40s", (long)(p - html), p);
            return msg;
        }
        /* find the end of the tag, skipping quoted attribute values */
        char quote = 0;
        for (; *q && (quote || *q != '>'); q++) {
            if (quote && *q == quote)
                quote = 0;
            else if (!quote && (*q == '"' || *q == '\''))
                quote = *q;
        }
        if (!*q) return "unterminated tag";
        bool self = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name)) {
                snprintf(msg, sizeof msg, "</%s> closes <%s> at offset %ld", name,
                         depth ? stack[depth - 1] : "(none)", (long)(p - html));
                return msg;
            }
            depth--;
        } else if (!self) {
            bool is_void = false;
            for (size_t i = 0; i < sizeof voids / sizeof voids[0]; i++)
                is_void |= !strcmp(name, voids[i]);
            if (!is_void) {
                if (depth == 256) return "nesting too deep";
                strcpy(stack[depth++], name);
            }
            if (!strcmp(name, "style")) { /* raw text up to </style> */
                const char *e = strstr(q, "</style>");
                if (!e) return "unterminated <style>";
                q = e - 1;
            }
        }
        p = q + 1;
    }
    if (depth) {
        snprintf(msg, sizeof msg, "%d tags left open, innermost <%s>", depth, stack[depth - 1]);
        return msg;
    }
    return NULL;
}

static void check_page(const char *html, bool full_data) {
    CHECK(!strncmp(html, "<!DOCTYPE html>", 15), "doctype");
    const char *err = check_nesting(html);
    CHECK(!err, "well-formed: %s", err ? err : "");
    /* self-contained: no script, no external reference of any kind */
    CHECK(!strstr(html, "<script") && !strstr(html, "http:") && !strstr(html, "https:") &&
              !strstr(html, "url(") && !strstr(html, "@import") && !strstr(html, " src=") &&
              !strstr(html, " href=") && !strstr(html, "<link"),
          "no script and no external reference");
    CHECK(count(html, "<svg", NULL) == 4 && count(html, "</svg>", NULL) == 4, "4 SVGs: %zu",
          count(html, "<svg", NULL));
    const char *ids[] = {"emotion", "fluency", "specificity", "topic"};
    for (int i = 0; i < 4; i++) {
        const char *b = NULL, *e = NULL;
        bool ok = section(html, ids[i], &b, &e);
        CHECK(ok && count(b, "<svg", e) == 1, "section %s has one chart", ids[i]);
    }
    CHECK(strstr(html, "<section id=\"linearity\">") && strstr(html, "<section id=\"samples\">"),
          "linearity and samples sections");
    if (!full_data) return;
    const char *b = NULL, *e = NULL;
    if (section(html, "emotion", &b, &e)) {
        CHECK(count(b, "class=\"line\"", e) == 10, "emotion: 2 panels x 5 lines: %zu",
              count(b, "class=\"line\"", e));
        CHECK(count(b, "class=\"band\"", e) == 10, "emotion: 10 sd bands: %zu",
              count(b, "class=\"band\"", e));
        CHECK(count(b, "class=\"pt\"", e) == 50, "emotion: 50 points");
        CHECK(count(b, "#e0a800", e) >= 3 && count(b, "#d62728", e) >= 3,
              "emotion colours and legend");
    }
    if (section(html, "fluency", &b, &e)) {
        CHECK(count(b, "class=\"panel\"", e) == 4 && count(b, "class=\"line\"", e) == 20,
              "fluency: 4 panels");
        CHECK(!strstr(b, "no data") || strstr(b, "no data") > e, "fluency has data");
    }
    if (section(html, "specificity", &b, &e)) {
        /* positive alphas 1, 2, 4: 3 maps of 5 x 6 cells, 5 outlined diagonals */
        CHECK(count(b, "<rect", e) == 90 && count(b, "cell diag", e) == 15,
              "heat maps: %zu cells, %zu diagonal", count(b, "<rect", e), count(b, "cell diag", e));
        CHECK(strstr(b, "alpha = 4, accuracy") != NULL, "heat map titled with alpha and accuracy");
    }
    if (section(html, "topic", &b, &e)) CHECK(count(b, "class=\"line\"", e) == 5, "topic: 5 lines");
    const char *lin = strstr(html, "<section id=\"linearity\">");
    CHECK(lin && count(lin, "<tr>", strstr(lin, "</table>")) == 6, "linearity: header + 5 rows");
    /* escaping of model output, settings and names */
    CHECK(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; Tom &amp; Jerry said &quot;hi&quot; "
                       "\xEF\xBF\xBD and left."),
          "sample response escaped and invalid UTF-8 replaced");
    CHECK(strstr(html, "note &lt;b&gt;") && strstr(html, "x &lt; y &amp; z"), "settings escaped");
}

static void test_escape(void) {
    char *s = es_html_escape("<a href='x'>\"&\"</a>\xC3\x28");
    CHECK(s && !strcmp(s, "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;\xEF\xBF\xBD("),
          "escape: %s", s ? s : "NULL");
    free(s);
    s = es_html_escape(NULL);
    CHECK(s && !*s, "NULL escapes to empty");
    free(s);
}

/* Width and height from a PNG's IHDR; false if the file is not a PNG. */
static bool png_size(const unsigned char *d, size_t n, unsigned *w, unsigned *h) {
    if (n < 33 || memcmp(d, "\x89PNG\r\n\x1a\n", 8) || memcmp(d + 12, "IHDR", 4)) return false;
    *w = (unsigned)d[16] << 24 | (unsigned)d[17] << 16 | (unsigned)d[18] << 8 | d[19];
    *h = (unsigned)d[20] << 24 | (unsigned)d[21] << 16 | (unsigned)d[22] << 8 | d[23];
    return true;
}

/* Runs the screenshot script; returns its exit status (77 = no Chromium). */
static int render(const char *html, const char *png, const char *dom) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sh '%s/tests/report_screenshot.sh' '%s' '%s' '%s'", es_test_source(),
             html, png, dom);
    int rc = system(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void copy_file(const char *from, const char *to) {
    size_t n = 0;
    char *d = es_test_read_file(from, &n);
    FILE *f = d ? fopen(to, "wb") : NULL;
    if (f) {
        fwrite(d, 1, n, f);
        fclose(f);
        printf("wrote %s\n", to);
    }
    free(d);
}

static void test_screenshot(const char *html_path) {
    char png[512], dom[512];
    snprintf(png, sizeof png, "%s/report.png", tmpdir);
    snprintf(dom, sizeof dom, "%s/report.dom.html", tmpdir);
    int rc = render(html_path, png, dom);
    if (rc == 77) {
        printf("SKIP: screenshot check (no chromium)\n");
        return;
    }
    CHECK(rc == 0, "report_screenshot.sh exit %d", rc);
    size_t n = 0;
    unsigned char *d = (unsigned char *)es_test_read_file(png, &n);
    unsigned w = 0, h = 0;
    CHECK(d && png_size(d, n, &w, &h) && w == 1200 && h == 3000, "PNG 1200x3000: %ux%u, %zu bytes",
          w, h, n);
    free(d);
    /* A blank white page of this size renders to a ~17 KB PNG (measured with Chromium
     * 156); the charts make the report's some 20 times larger. */
    printf("screenshot: %zu bytes\n", n);
    CHECK(n > 100000, "report PNG (%zu B) far larger than a blank page's (~17 KB)", n);
    char *text = es_test_read_file(dom, NULL);
    CHECK(text && count(text, "<svg", NULL) == 4 && count(text, "<polygon", NULL) == 25 &&
              count(text, "<path", NULL) >= 35,
          "DOM after Chromium keeps the SVGs: %zu svg, %zu polygon, %zu path",
          text ? count(text, "<svg", NULL) : 0, text ? count(text, "<polygon", NULL) : 0,
          text ? count(text, "<path", NULL) : 0);
    CHECK(text && !strstr(text, "<script") && strstr(text, "&lt;script&gt;alert(1)"),
          "no script element in the DOM");
    free(text);
    const char *out = getenv("ES_REPORT_EXAMPLE_DIR");
    if (out && *out) {
        char to[600];
        snprintf(to, sizeof to, "%s/report-example.png", out);
        copy_file(png, to);
        snprintf(to, sizeof to, "%s/report-example.html", out);
        copy_file(html_path, to);
    }
}

/* A run with no perplexity, topic or scores: panels say "no data", the page stays sane. */
static void test_sparse(void) {
    const char *emotions[] = {"joy"};
    double alphas[] = {0, 1};
    es_gen_record recs[2];
    for (int i = 0; i < 2; i++) {
        recs[i] = es_gen_record_empty();
        recs[i].emotion = (char *)"joy";
        recs[i].alpha = i;
        recs[i].query_id = (char *)"q";
        recs[i].response = (char *)"";
    }
    es_eval_results *r = NULL;
    CHECK(es_eval_summarize(recs, 2, emotions, 1, alphas, 2, NULL, 0, NULL, NULL, &r) == ES_OK,
          "sparse summarize");
    if (!r) return;
    char *html = NULL;
    CHECK(es_report_html(r, NULL, &html, NULL) == ES_OK, "sparse report: %s", es_last_error());
    if (html) {
        check_page(html, false);
        CHECK(count(html, "no data", NULL) >= 4, "no-data panels: %zu",
              count(html, "no data", NULL));
        free(html);
    }
    es_eval_results_free(r);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/es_test_report_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_escape();
    es_eval_results *r = es_synth_results(8, 0.12, 1, "demo-16m (synthetic scores)");
    CHECK(r != NULL, "synthetic results: %s", es_last_error());
    if (r) {
        es_report_params p = es_report_default_params();
        p.title = "emosteer evaluation — synthetic example (tests/test_report.c)";
        char *html = NULL;
        size_t len = 0;
        CHECK(es_report_html(r, &p, &html, &len) == ES_OK && len == strlen(html), "report html: %s",
              es_last_error());
        if (html) {
            printf("report: %zu bytes\n", len);
            check_page(html, true);
            free(html);
        }
        char path[512];
        snprintf(path, sizeof path, "%s/report.html", tmpdir);
        CHECK(es_report_write(r, &p, path) == ES_OK, "write report: %s", es_last_error());
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size > 20000, "report file size %lld",
              (long long)st.st_size);
        test_screenshot(path);
        es_eval_results_free(r);
    }
    test_sparse();
    int rc = es_test_finish();
    if (rc == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        fprintf(stderr, "files kept in %s\n", tmpdir);
    }
    return rc;
}
