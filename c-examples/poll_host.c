/* poll_host: a chat server whose own poll() loop drives xtnet (XT_DISPATCH_POLL).
 *
 *   poll_host [--port P] [--max-seconds N]
 *
 * One poll() waits on standard input and on xt_wakeup_fd(); when xtnet's descriptor is
 * readable, xt_poll() runs the waiting callbacks right here, on this thread, so the host's
 * data needs no locks. Every line a client sends goes to all other clients as
 * "<address>:<port>: line"; every line typed on standard input goes to all clients as
 * "host: line". Lines end with "\n". The first line printed is "listening on port P".
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "xtnet.h"

#define MAX_CLIENTS 256

static XtContext *ctx;
static uint64_t clients[MAX_CLIENTS];
static size_t client_count;

static void broadcast(uint64_t except, const char *prefix, const uint8_t *data, size_t len) {
    for (size_t i = 0; i < client_count; i++) {
        if (clients[i] == except) continue;
        xt_send_data(ctx, clients[i], (const uint8_t *)prefix, strlen(prefix));
        xt_send_data(ctx, clients[i], data, len);
        xt_send_data(ctx, clients[i], (const uint8_t *)"\n", 1);
    }
}

static bool on_new_connection(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    (void)user_data;
    if (client_count == MAX_CLIENTS) return false; /* refused: closed at once */
    clients[client_count++] = id;
    printf("joined: %s:%u (id %llu)\n", info->remote_address, (unsigned)info->peer_port, (unsigned long long)id);
    return true;
}

static void on_data(void *user_data, const uint8_t *data, size_t len, uint64_t id, const XtConnectionInfo *info) {
    (void)user_data;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s:%u: ", info->remote_address, (unsigned)info->peer_port);
    printf("%s%.*s\n", prefix, (int)len, (const char *)data);
    broadcast(id, prefix, data, len);
}

static void on_socket_error(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    (void)user_data;
    for (size_t i = 0; i < client_count; i++)
        if (clients[i] == id) { clients[i] = clients[--client_count]; break; }
    printf("left: %s:%u (%d %s)\n", info->remote_address, (unsigned)info->peer_port, info->error_number,
           info->error_message);
}

int main(int argc, char **argv) {
    long port = 9000, max_seconds = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = xt_example_number(argv[i], argv[i + 1], 65535);
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = xt_example_number(argv[i], argv[i + 1], 86400L * 365);
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.new_connection = on_new_connection;
    callbacks.data_available = on_data;
    callbacks.socket_error = on_socket_error;
    ctx = xt_context_new(&callbacks, XT_DISPATCH_POLL);
    if (!ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    uint32_t listener = xt_start_tcp_listener(ctx, (uint16_t)port, (const uint8_t *)"\n", 1);
    if (!listener) {
        fprintf(stderr, "cannot listen: error %d: %s\n", xt_last_error(), xt_last_error_message());
        xt_context_free(ctx);
        return 1;
    }
    printf("listening on port %u\n", (unsigned)xt_listener_port(ctx, listener));

    struct pollfd fds[2] = {
        {.fd = STDIN_FILENO, .events = POLLIN, .revents = 0},
        {.fd = xt_wakeup_fd(ctx), .events = POLLIN, .revents = 0},
    };
    time_t deadline = max_seconds ? time(NULL) + max_seconds : 0;
    bool stdin_open = true;
    char line[4096];
    while (!deadline || time(NULL) < deadline) {
        int n = poll(fds, 2, 200);
        if (n < 0 && errno != EINTR) { perror("poll"); break; }
        if (n <= 0) continue;
        if (fds[1].revents & POLLIN) xt_poll(ctx, 0);
        if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP))) {
            ssize_t got = read(STDIN_FILENO, line, sizeof line);
            if (got <= 0) { stdin_open = false; fds[0].fd = -1; continue; }
            /* One read may hold several lines: send each one. */
            size_t start = 0;
            for (size_t k = 0; k < (size_t)got; k++) {
                if (line[k] != '\n') continue;
                broadcast(0, "host: ", (const uint8_t *)line + start, k - start);
                start = k + 1;
            }
        }
    }
    xt_context_free(ctx);
    return 0;
}
