/*
 * test_bad_inputs.c — files that used to be silently misread by the library now fail
 * with a clear message (issue: every bad input gets a clear answer):
 *   - a model whose block_count is smaller than the blocks it holds (ran part of it);
 *   - a FIFO given as the model (hung in open) and a directory, mmap'ed or copied;
 *   - the same through the whole-file reader used for prompts, queries and lexicons.
 */
#include "emosteer.h"
#include "queries.h"
#include "testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *demo_model(size_t *len) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    return es_test_read_file(path, len);
}

/* llama.block_count 8 -> 7: the file still holds blk.7.* */
static void test_block_count(void) {
    size_t len = 0;
    char *d = demo_model(&len);
    CHECK(d != NULL, "read the demo model");
    if (!d) return;
    const char key[] = "llama.block_count";
    char *at = memmem(d, len, key, sizeof key - 1);
    CHECK(at != NULL, "block_count key present");
    if (at) {
        unsigned char *val = (unsigned char *)at + sizeof key - 1 + 4; /* after the u32 type id */
        CHECK(val[0] == 8, "demo has 8 blocks (got %d)", val[0]);
        val[0] = 7;
        char path[64];
        snprintf(path, sizeof path, "/tmp/es_test_bad_%d.gguf", (int)getpid());
        FILE *f = fopen(path, "wb");
        fwrite(d, 1, len, f);
        fclose(f);
        es_model *m = NULL;
        es_status st = es_model_load(path, NULL, &m);
        CHECK(st == ES_ERR_FORMAT && !m && strstr(es_last_error(), "blk.7.") &&
                  strstr(es_last_error(), "block_count says the model has 7 blocks"),
              "block_count 7 with 8 blocks -> ES_ERR_FORMAT (%d: %s)", st, es_last_error());
        es_model_free(m);
        unlink(path);
    }
    free(d);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: opening a FIFO hung\n";
    if (write(2, msg, sizeof msg - 1)) {
    }
    _exit(1);
}

static void test_not_regular(void) {
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/tmp/es_test_fifo_%d", (int)getpid());
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    signal(SIGALRM, on_alarm);
    alarm(20);
    for (int mmap_on = 0; mmap_on <= 1; mmap_on++) {
        es_model_params p = es_model_default_params();
        p.use_mmap = mmap_on;
        const char *paths[] = {fifo, "/tmp"};
        for (int i = 0; i < 2; i++) {
            es_model *m = NULL;
            es_status st = es_model_load(paths[i], &p, &m);
            CHECK(st == ES_ERR_IO && !m && strstr(es_last_error(), paths[i]) &&
                      strstr(es_last_error(), "not a"),
                  "%s as the model (mmap %d) -> ES_ERR_IO naming it (%d: %s)", paths[i], mmap_on,
                  st, es_last_error());
        }
    }
    es_query_set *qs = NULL;
    es_status st = es_query_set_load(fifo, &qs);
    CHECK(st == ES_ERR_IO && !qs && strstr(es_last_error(), "FIFO"), "FIFO as a query set (%d: %s)",
          st, es_last_error());
    alarm(0);
    unlink(fifo);
}

int main(void) {
    test_block_count();
    test_not_regular();
    return es_test_finish();
}
