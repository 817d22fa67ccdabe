/*
 * test_perplexity_demo.c — `emosteer perplexity -m demo-16m.f16.gguf -f corpus-valid.txt
 * -c 512` must land within 1% of llama.cpp's 37.34 on the same file (the standard
 * method: BOS-tokenized file, non-overlapping 512-token chunks, first token of each
 * replaced by BOS, second half scored). Runs the real CLI (ES_BIN).
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *bin = getenv("ES_BIN");
    const char *shared = es_test_shared();
    if (!bin || !shared) {
        printf("SKIP: needs ES_BIN and ../shared\n");
        return ES_TEST_SKIP;
    }
    char cmd[8192];
    snprintf(
        cmd, sizeof cmd,
        "'%s' perplexity -m '%s/models/demo-16m.f16.gguf' -f '%s/data/corpus-valid.txt' -c 512 "
        "2>/dev/null",
        bin, shared, shared);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen failed");
    if (!p) return es_test_finish();
    char line[512];
    double ppl = -1;
    while (fgets(line, sizeof line, p)) {
        const char *at = strstr(line, "PPL = ");
        if (at) ppl = strtod(at + 6, NULL);
    }
    int rc = pclose(p);
    CHECK(rc == 0, "perplexity exited with status %d", rc);
    const double ref = 37.34;
    printf("perplexity demo-16m f16, corpus-valid, c=512: %.4f (llama.cpp %.2f, rel diff %.4f%%)\n",
           ppl, ref, 100.0 * fabs(ppl - ref) / ref);
    CHECK(ppl > 0 && fabs(ppl - ref) / ref < 0.01, "PPL %.4f is not within 1%% of %.2f", ppl, ref);
    return es_test_finish();
}
