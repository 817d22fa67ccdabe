/* cmd_eval.c — placeholder until the eval command lands. */
#include "cli.h"
int cmd_eval(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "emosteer eval: not built yet\n");
    return ES_EXIT_FAIL;
}
