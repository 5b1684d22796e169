/* Small helpers shared by the C examples: argument parsing, C-escape decoding, and the main
 * loop of a server. The examples use nothing of xtnet but include/xtnet.h and the library.
 * Include after defining _POSIX_C_SOURCE (sigaction, nanosleep). */
#ifndef XTNET_EXAMPLES_COMMON_H
#define XTNET_EXAMPLES_COMMON_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xtnet.h"

/* Decodes C escapes (\r \n \t \0 \\ \xHH) from `in` into `out` (at most `cap` bytes).
 * Returns the decoded length, or -1 if it does not fit or an escape is malformed. */
static inline long xt_example_unescape(const char *in, unsigned char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'r': c = '\r'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '0': c = '\0'; break;
            case '\\': c = '\\'; break;
            case 'x': {
                char hex[3] = {0, 0, 0};
                char *end = NULL;
                if (!p[1] || !p[2]) return -1;
                hex[0] = p[1];
                hex[1] = p[2];
                c = (unsigned char)strtoul(hex, &end, 16);
                if (*end) return -1;
                p += 2;
                break;
            }
            default: return -1;
            }
        }
        if (n == cap) return -1;
        out[n++] = c;
    }
    return (long)n;
}

/* Parses a non-negative integer no larger than `max`; exits with a message otherwise. */
static inline long xt_example_number(const char *flag, const char *text, long max) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < 0 || v > max) {
        fprintf(stderr, "%s: expected a number from 0 to %ld, got \"%s\"\n", flag, max, text);
        exit(2);
    }
    return v;
}

/* "--dispatch thread|poll|inline": the XtDispatch value; exits with a message otherwise. */
static inline uint32_t xt_example_dispatch(const char *text) {
    if (!strcmp(text, "thread")) return XT_DISPATCH_THREAD;
    if (!strcmp(text, "poll")) return XT_DISPATCH_POLL;
    if (!strcmp(text, "inline")) return XT_DISPATCH_INLINE;
    fprintf(stderr, "--dispatch: thread, poll or inline, got \"%s\"\n", text);
    exit(2);
}

static inline const char *xt_example_dispatch_name(uint32_t dispatch) {
    return dispatch == XT_DISPATCH_POLL ? "poll" : dispatch == XT_DISPATCH_INLINE ? "inline" : "thread";
}

/* "--threads N": XT_OPT_NETWORK_THREADS before anything starts (0: the library's default). */
static inline void xt_example_threads(XtContext *ctx, long threads) {
    if (threads && xt_set_option(ctx, XT_OPT_NETWORK_THREADS, threads) != XT_OK) {
        fprintf(stderr, "--threads: %s\n", xt_last_error_message());
        exit(2);
    }
}

static volatile sig_atomic_t xt_example_stop_requested = 0;
static inline void xt_example_on_signal(int sig) { (void)sig; xt_example_stop_requested = 1; }

/* Runs a server until SIGINT/SIGTERM or `max_seconds` (0 = no limit). Thread (and inline)
 * dispatch: the callbacks run on xtnet's threads and this one just waits. Poll dispatch: this is the host's
 * own event loop, waiting on xtnet's descriptor and letting it run callbacks here. */
static inline void xt_example_serve(XtContext *ctx, bool poll_mode, long max_seconds) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = xt_example_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    time_t deadline = max_seconds ? time(NULL) + max_seconds : 0;
    struct pollfd p = {.fd = poll_mode ? xt_wakeup_fd(ctx) : -1, .events = POLLIN, .revents = 0};
    while (!xt_example_stop_requested && (!deadline || time(NULL) < deadline)) {
        if (poll_mode) {
            int n = poll(&p, 1, 200);
            if (n < 0 && errno != EINTR) { perror("poll"); break; }
            if (n > 0 && xt_poll(ctx, 0) < 0) fprintf(stderr, "xt_poll: %s\n", xt_last_error_message());
        } else {
            struct timespec t = {0, 100 * 1000 * 1000};
            nanosleep(&t, NULL);
        }
    }
}

#endif
