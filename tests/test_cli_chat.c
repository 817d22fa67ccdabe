/*
 * test_cli_chat.c — `emosteer chat` ($ES_BIN) on the demo model, driven like a user would:
 * the child's stdin and stdout are a pseudo-terminal (no echo, no output processing), so
 * every prompt shows as "\n> " and the text between two prompts is one reply; stderr is
 * a pipe. Checks that /help lists the commands; that an unknown /command is refused with
 * a note and never reaches the model; that with -c 96 and long messages the oldest turns
 * are dropped with a note and every message still gets a reply; that --ev without --steer
 * starts unsteered and /steer turns steering on; that SIGINT during a reply stops it, the
 * next message gets a reply and end of input exits 0; that SIGINT at the prompt, or twice
 * during a reply, quits with exit 0. Every wait is bounded; a child that outlives its
 * deadline is killed and the check fails.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 60.0 /* for any one thing to show up (sanitizer builds are slow) */

static const char *bin;
static char model[4096], ev[4096];

typedef struct buf {
    char *data; /* [len] + NUL (malloc'ed) */
    size_t len, cap;
} buf;

typedef struct child {
    pid_t pid;
    int tty; /* pty master: the child's stdin and stdout */
    int err; /* read end of the child's stderr */
    buf out, errs;
    bool tty_eof, err_eof;
} child;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void buf_add(buf *b, const char *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) abort();
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Starts `bin chat ARGS...` (NULL-terminated). */
static bool spawn(child *c, const char *const *args) {
    memset(c, 0, sizeof *c);
    c->pid = -1;
    buf_add(&c->out, "", 0);
    buf_add(&c->errs, "", 0);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) return false;
    const char *slave_name = ptsname(master);
    int slave = slave_name ? open(slave_name, O_RDWR | O_NOCTTY) : -1;
    if (slave < 0) return false;
    struct termios t;
    if (tcgetattr(slave, &t) == 0) {
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ISIG); /* canonical: ^D at line start is EOF */
        t.c_oflag &= ~(tcflag_t)OPOST;                  /* "\n" stays "\n" */
        tcsetattr(slave, TCSANOW, &t);
    }
    int ep[2];
    if (pipe(ep)) return false;
    const char *argv[32] = {bin, "chat"};
    int n = 2;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(ep[1], 2);
        close(slave);
        close(master);
        close(ep[0]);
        close(ep[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(slave);
    close(ep[1]);
    c->pid = pid;
    c->tty = master;
    c->err = ep[0];
    fcntl(c->tty, F_SETFL, O_NONBLOCK);
    fcntl(c->err, F_SETFL, O_NONBLOCK);
    return true;
}

/* Reads what the child wrote, for at most `wait_s` seconds or until one read. Returns
 * false once both streams have ended. */
static bool pump(child *c, double wait_s) {
    struct pollfd fds[2] = {{c->tty_eof ? -1 : c->tty, POLLIN, 0},
                            {c->err_eof ? -1 : c->err, POLLIN, 0}};
    if (c->tty_eof && c->err_eof) return false;
    int ms = wait_s > 0 ? (int)(wait_s * 1000) + 1 : 0;
    if (poll(fds, 2, ms) <= 0) return true;
    char tmp[4096];
    for (int k = 0; k < 2; k++) {
        if (!fds[k].revents) continue;
        ssize_t got = read(k ? c->err : c->tty, tmp, sizeof tmp);
        if (got > 0)
            buf_add(k ? &c->errs : &c->out, tmp, (size_t)got);
        else if (got == 0 || (errno != EAGAIN && errno != EINTR))
            *(k ? &c->err_eof : &c->tty_eof) = true;
    }
    return true;
}

/* Waits until `needle` shows in the child's stdout (err: stderr) at or after byte
 * `from`; returns where it starts, or -1 after WAIT_S seconds or the streams' end. */
static long wait_for(child *c, bool err, const char *needle, size_t from) {
    double deadline = now_s() + WAIT_S;
    for (;;) {
        buf *b = err ? &c->errs : &c->out;
        if (from <= b->len) {
            const char *hit = strstr(b->data + from, needle);
            if (hit) return (long)(hit - b->data);
        }
        double left = deadline - now_s();
        if (left <= 0 || !pump(c, left)) return -1;
    }
}

static void send_text(child *c, const char *text) {
    size_t n = strlen(text), off = 0;
    double deadline = now_s() + WAIT_S;
    while (off < n && now_s() < deadline) {
        ssize_t w = write(c->tty, text + off, n - off);
        if (w > 0)
            off += (size_t)w;
        else
            pump(c, 0.01); /* the terminal's buffer is full: let the child read */
    }
}

/* Waits for the child to exit (reading its output meanwhile); kills it after WAIT_S.
 * Returns its exit code, 128 + signal if a signal ended it, or -1 on a timeout. */
static int wait_exit(child *c) {
    double deadline = now_s() + WAIT_S;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) break;
        if (now_s() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            c->pid = -1;
            return -1;
        }
        if (!pump(c, 0.05)) usleep(10000);
    }
    c->pid = -1;
    while (pump(c, 0.05) && !(c->tty_eof && c->err_eof)) {
        if (now_s() > deadline) break;
        struct pollfd fds[2] = {{c->tty, POLLIN, 0}, {c->err, POLLIN, 0}};
        if (poll(fds, 2, 0) == 0) break; /* nothing left to read */
    }
    return WIFEXITED(status)     ? WEXITSTATUS(status)
           : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                 : -1;
}

/* Sends end of input (^D at the start of a line) and waits for the exit. */
static int end_input(child *c) {
    send_text(c, "\x04");
    return wait_exit(c);
}

static void child_free(child *c) {
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    if (c->tty > 0) close(c->tty);
    if (c->err > 0) close(c->err);
    free(c->out.data);
    free(c->errs.data);
}

/* The replies in a pty transcript (the text between consecutive prompts): returns how
 * many, and in *n_nonempty how many hold something other than white space. */
static int count_replies(const char *out, int *n_nonempty) {
    int n = 0;
    *n_nonempty = 0;
    const char *p = strstr(out, "> ");
    while (p) {
        p += 2;
        const char *next = strstr(p, "\n> ");
        if (!next) break; /* the text after the last prompt is no reply */
        n++;
        for (const char *q = p; q < next; q++)
            if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') {
                (*n_nonempty)++;
                break;
            }
        p = next + 1;
    }
    return n;
}

static void test_help(void) {
    child c;
    const char *args[] = {"-m", model, NULL};
    if (!CHECK(spawn(&c, args), "spawn")) return;
    send_text(&c, "/help\n");
    long at = wait_for(&c, false, "//TEXT", 0);
    CHECK(at >= 0, "/help: no list; got '%s'", c.out.data);
    const char *cmds[] = {"/help", "/exit", "/quit", "/reset", "/steer E=A", "/steer off"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        CHECK(strstr(c.out.data, cmds[i]) != NULL, "/help lists %s", cmds[i]);
    int rc = end_input(&c);
    CHECK(rc == 0, "/help then end of input: exit %d; stderr '%s'", rc, c.errs.data);
    child_free(&c);

    /* the --help epilog says the same, and how Ctrl-C and a full context behave */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' chat --help", bin);
    FILE *p = popen(cmd, "r");
    static char help[65536];
    size_t n = p ? fread(help, 1, sizeof help - 1, p) : 0;
    help[n] = '\0';
    int st = p ? pclose(p) : -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "chat --help exit");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        CHECK(strstr(help, cmds[i]) != NULL, "chat --help lists %s", cmds[i]);
    CHECK(strstr(help, "Ctrl-C") && strstr(help, "stays in the history") &&
              strstr(help, "oldest turns"),
          "chat --help says what Ctrl-C and a full context do");
    printf("help: /help and --help list %zu commands\n", sizeof cmds / sizeof cmds[0]);
}

static void test_unknown_command(void) {
    child c;
    const char *args[] = {"-m", model, "--temp", "0", "-n", "8", NULL};
    if (!CHECK(spawn(&c, args), "spawn")) return;
    send_text(&c, "/foo\n/foo bar baz\n");
    long at = wait_for(&c, true, "unknown command /foo; /help lists them", 0);
    CHECK(at >= 0, "/foo: no note; stderr '%s'", c.errs.data);
    CHECK(wait_for(&c, true, "unknown command /foo;", (size_t)at + 1) >= 0, "/foo bar: no note");
    int rc = end_input(&c);
    CHECK(rc == 0, "exit %d", rc);
    /* nothing but prompts on stdout: the model was never called */
    int n_nonempty, n = count_replies(c.out.data, &n_nonempty);
    CHECK(n_nonempty == 0, "/foo reached the model: %d of %d replies have text: '%s'", n_nonempty,
          n, c.out.data);
    printf("unknown: /foo refused, %d empty turns, no reply\n", n);
    child_free(&c);
}

static void test_context_full(void) {
    static const char *const long_msg = "Once upon a time a little girl walked through the old "
                                        "green forest to visit her grandmother, "
                                        "carrying a basket of bread and apples.\n";
    const int n_msgs = 5;
    child c;
    const char *args[] = {"-m", model, "-c", "96", "-n", "24", "--temp", "0", NULL};
    if (!CHECK(spawn(&c, args), "spawn")) return;
    for (int i = 0; i < n_msgs; i++)
        send_text(&c, long_msg);
    send_text(&c, "/exit\n");
    int rc = wait_exit(&c);
    CHECK(rc == 0, "-c 96: exit %d; stderr '%s'", rc, c.errs.data);
    int n_nonempty, n = count_replies(c.out.data, &n_nonempty);
    CHECK(n == n_msgs && n_nonempty == n_msgs, "-c 96: %d replies, %d with text; want %d: '%s'", n,
          n_nonempty, n_msgs, c.out.data);
    int drops = 0;
    for (const char *p = c.errs.data; (p = strstr(p, "chat: dropped the ")); p++) {
        CHECK(strstr(p, "to fit the context (96 positions)") != NULL, "drop note: '%.100s'", p);
        drops++;
    }
    CHECK(drops > 0, "-c 96: no drop note; stderr '%s'", c.errs.data);
    CHECK(!strstr(c.errs.data, "emosteer:") && !strstr(c.errs.data, "not sent"),
          "-c 96: errors: '%s'", c.errs.data);
    printf("context: -c 96, %d long messages: %d replies, %d drop notes\n", n_msgs, n_nonempty,
           drops);
    child_free(&c);
}

static void test_ev_unsteered(void) {
    child c;
    const char *args[] = {"-m", model, "--ev", ev, "--temp", "0", "-n", "16", NULL};
    if (!CHECK(spawn(&c, args), "spawn")) return;
    long note = wait_for(&c, true, "chat: unsteered", 0);
    CHECK(note >= 0, "--ev alone: no 'unsteered' note; stderr '%s'", c.errs.data);
    CHECK(note >= 0 && wait_for(&c, true, ")\n", (size_t)note) >= 0 &&
              strstr(c.errs.data + note, " joy "),
          "the note names the emotions: '%s'", c.errs.data);
    send_text(&c, "Hello there, how are you?\n");
    long first = wait_for(&c, false, "\n> ", 1);
    CHECK(first >= 0, "--ev alone: no reply");
    send_text(&c, "/steer joy=1.5\n");
    CHECK(wait_for(&c, true, "chat: steering joy=1.5", 0) >= 0,
          "/steer joy=1.5: no note; stderr '%s'", c.errs.data);
    send_text(&c, "Hello there, how are you?\n");
    send_text(&c, "/steer off\n");
    CHECK(wait_for(&c, true, "chat: unsteered by --ev", 0) >= 0, "/steer off: no note; stderr '%s'",
          c.errs.data);
    int rc = end_input(&c);
    CHECK(rc == 0, "--ev alone: exit %d; stderr '%s'", rc, c.errs.data);
    int n_nonempty, n = count_replies(c.out.data, &n_nonempty);
    CHECK(n_nonempty == 2, "--ev alone then /steer: %d of %d turns have replies, want 2: '%s'",
          n_nonempty, n, c.out.data);
    CHECK(!strstr(c.errs.data, "emosteer"), "--ev alone: errors: '%s'", c.errs.data);
    printf("ev: --ev alone starts unsteered, /steer joy=1.5 and /steer off apply\n");
    child_free(&c);
}

/* Waits for the first bytes of a reply after the prompt at `prompt` (a "> " offset). */
static bool reply_started(child *c, long prompt) {
    double deadline = now_s() + WAIT_S;
    while (c->out.len <= (size_t)prompt + 2 && now_s() < deadline)
        if (!pump(c, deadline - now_s())) break;
    return c->out.len > (size_t)prompt + 2;
}

static void test_sigint(void) {
    child c;
    /* a long -n: the reply runs until the context is full unless stopped */
    const char *args[] = {"-m", model, "--temp", "0", "-n", "100000", NULL};
    if (!CHECK(spawn(&c, args), "spawn")) return;
    long p1 = wait_for(&c, false, "> ", 0);
    if (!CHECK(p1 >= 0, "no prompt")) goto done;
    send_text(&c, "Tell me a long story about a dragon.\n");
    if (!CHECK(reply_started(&c, p1), "no reply to stop")) goto done;
    kill(c.pid, SIGINT);
    long note = wait_for(&c, true, "chat: reply stopped", 0);
    CHECK(note >= 0, "SIGINT: no 'reply stopped' note; stderr '%s'", c.errs.data);
    long p2 = wait_for(&c, false, "\n> ", (size_t)p1 + 2);
    if (!CHECK(p2 >= 0, "SIGINT: no prompt after the stopped reply")) goto done;
    size_t stopped_len = (size_t)p2 - (size_t)p1;
    send_text(&c, "Again, please.\n");
    if (!CHECK(reply_started(&c, p2 + 1), "after SIGINT: no reply")) goto done;
    long p3 = wait_for(&c, false, "\n> ", (size_t)p2 + 3);
    CHECK(p3 >= 0, "after SIGINT: the reply did not end");
    int rc = end_input(&c);
    CHECK(rc == 0, "after SIGINT, end of input: exit %d; stderr '%s'", rc, c.errs.data);
    CHECK(!strstr(c.errs.data, "emosteer:"), "SIGINT: errors: '%s'", c.errs.data);
    printf("sigint: reply stopped after %zu bytes, next reply %ld bytes, exit %d\n", stopped_len,
           p3 >= 0 ? p3 - p2 : -1L, rc);
done:
    child_free(&c);

    /* Ctrl-C at the prompt quits quietly */
    const char *args2[] = {"-m", model, NULL};
    if (!CHECK(spawn(&c, args2), "spawn")) return;
    if (CHECK(wait_for(&c, false, "> ", 0) >= 0, "no prompt")) {
        kill(c.pid, SIGINT);
        rc = wait_exit(&c);
        CHECK(rc == 0, "SIGINT at the prompt: exit %d", rc);
        int lines = 0;
        for (const char *q = c.errs.data; *q; q++)
            lines += *q == '\n';
        CHECK(lines == 1, "SIGINT at the prompt: stderr has %d lines, want the banner only: '%s'",
              lines, c.errs.data);
    }
    child_free(&c);

    /* two quick SIGINTs during a reply quit */
    if (!CHECK(spawn(&c, args), "spawn")) return;
    long p = wait_for(&c, false, "> ", 0);
    if (CHECK(p >= 0, "no prompt")) {
        send_text(&c, "Tell me a long story about a dragon.\n");
        if (CHECK(reply_started(&c, p), "no reply to stop")) {
            /* a little apart: two pending SIGINTs would merge into one */
            kill(c.pid, SIGINT);
            usleep(20000);
            kill(c.pid, SIGINT);
            rc = wait_exit(&c);
            CHECK(rc == 0, "two SIGINTs during a reply: exit %d; stderr '%s'", rc, c.errs.data);
        }
    }
    child_free(&c);
    printf("sigint: at the prompt and twice during a reply: exit 0\n");
}

int main(void) {
    bin = getenv("ES_BIN");
    if (!bin) {
        printf("needs ES_BIN: skipped\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(model, sizeof model, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    snprintf(ev, sizeof ev, "%s/models/demo-16m.ev.gguf", es_test_source());
    test_help();
    test_unknown_command();
    test_context_full();
    test_ev_unsteered();
    test_sigint();
    return es_test_finish();
}
