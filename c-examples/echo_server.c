/* echo_server: a framed TCP echo server on xtnet.
 *
 * Each message (split on the boundary) is sent back followed by the boundary.
 *
 *   echo_server [--port P] [--boundary STR] [--dispatch thread|poll|inline] [--threads N]
 *               [--max-seconds N] [--quiet] [--udp-port P] [--tls] [--websocket]
 *
 *   --port P         port to listen on (default 9000; 0 = any free port)
 *   --udp-port P     also echo every UDP datagram on port P back to its sender (0 = any port)
 *   --boundary STR   message boundary with C escapes (default "\r\n"; "" = no framing)
 *   --dispatch MODE  thread: callbacks on xtnet's thread; poll: on this thread via xt_poll;
 *                    inline: on xtnet's network threads, several at once (the counters are
 *                    atomic for that)
 *   --threads N      XT_OPT_NETWORK_THREADS (default: the library's, cores - 1)
 *   --max-seconds N  stop after N seconds (default 0 = run until SIGINT/SIGTERM)
 *   --quiet          do not log each connection
 *   --tls            over TLS, with a self-signed certificate made at start (fingerprint printed)
 *   --websocket      a WebSocket echo instead (any path; each message back with its kind);
 *                    with --tls over wss://
 *
 * The first line printed is "listening on port P ..."; with --udp-port the second is
 * "udp listening on port P". Try it: nc localhost 9000 (and nc -u localhost 9001)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "xtnet.h"

typedef struct Server {
    XtContext *ctx;
    unsigned char boundary[256];
    size_t boundary_len;
    bool quiet;
    atomic_ullong connections, messages, datagrams;
} Server;

static bool on_new_connection(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    Server *s = user_data;
    atomic_fetch_add_explicit(&s->connections, 1, memory_order_relaxed);
    if (!s->quiet)
        printf("connection %llu from %s port %u (name %s, mac %s)\n", (unsigned long long)id,
               info->remote_address, (unsigned)info->peer_port, info->name, info->mac_address);
    return true;
}

static void on_data(void *user_data, const uint8_t *data, size_t len, uint64_t id,
                    const XtConnectionInfo *info) {
    Server *s = user_data;
    atomic_fetch_add_explicit(&s->messages, 1, memory_order_relaxed);
    if (info->message_kind) { /* a WebSocket message: back whole, with its kind */
        int rc = xt_send_websocket(s->ctx, id, data, len, info->message_kind);
        if (rc != XT_OK)
            fprintf(stderr, "send to %llu failed: %d %s\n", (unsigned long long)id, rc, xt_last_error_message());
        return;
    }
    /* Two sends: xtnet writes them in order, and coalesces them into one write. */
    int rc = xt_send_data(s->ctx, id, data, len);
    if (rc == XT_OK && s->boundary_len) rc = xt_send_data(s->ctx, id, s->boundary, s->boundary_len);
    if (rc != XT_OK)
        fprintf(stderr, "send to %llu failed: %d %s\n", (unsigned long long)id, rc, xt_last_error_message());
}

static void on_socket_error(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    Server *s = user_data;
    if (!s->quiet)
        printf("connection %llu closed: %d %s\n", (unsigned long long)id, info->error_number,
               info->error_message);
}

static void on_datagram(void *user_data, uint32_t server_id, const uint8_t *data, size_t len,
                        const XtDatagramInfo *info) {
    Server *s = user_data;
    atomic_fetch_add_explicit(&s->datagrams, 1, memory_order_relaxed);
    /* From the listener's own port, back to the sender (a callback: sent when the batch ends). */
    int rc = xt_send_datagram(s->ctx, server_id, info->remote_address, info->remote_port, data, len);
    if (rc != XT_OK) fprintf(stderr, "datagram to %s failed: %d %s\n", info->remote_address, rc, xt_last_error_message());
}

/* --websocket: every request is asked to become a WebSocket (others get 400). */
static void on_page(void *user_data, uint32_t server_id, const XtHttpRequest *request, XtHttpResponse *response) {
    Server *s = user_data;
    (void)server_id;
    (void)request;
    if (xt_http_response_accept_websocket(response, NULL))
        atomic_fetch_add_explicit(&s->connections, 1, memory_order_relaxed);
}

static void on_log(void *user_data, int32_t level, const char *message) {
    (void)user_data;
    fprintf(stderr, "xtnet[%d]: %s\n", level, message);
}

int main(int argc, char **argv) {
    long port = 9000, max_seconds = 0, udp_port = -1, threads = 0;
    const char *boundary_text = "\\r\\n";
    uint32_t dispatch = XT_DISPATCH_THREAD;
    bool quiet = false, tls = false, websocket = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet")) { quiet = true; continue; }
        if (!strcmp(a, "--tls")) { tls = true; continue; }
        if (!strcmp(a, "--websocket")) { websocket = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "%s needs a value (see the top of echo_server.c)\n", a); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--port")) port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--boundary")) boundary_text = v;
        else if (!strcmp(a, "--udp-port")) udp_port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--max-seconds")) max_seconds = xt_example_number(a, v, 86400L * 365);
        else if (!strcmp(a, "--dispatch")) dispatch = xt_example_dispatch(v);
        else if (!strcmp(a, "--threads")) threads = xt_example_number(a, v, 256);
        else { fprintf(stderr, "unknown argument %s\n", a); return 2; }
    }

    static Server server;
    long blen = xt_example_unescape(boundary_text, server.boundary, sizeof server.boundary);
    if (blen < 0) { fprintf(stderr, "--boundary: bad escape or longer than 256 bytes\n"); return 2; }
    server.boundary_len = (size_t)blen;
    server.quiet = quiet;

    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.user_data = &server;
    callbacks.new_connection = on_new_connection;
    callbacks.data_available = on_data;
    callbacks.socket_error = on_socket_error;
    callbacks.received_datagram = on_datagram;
    callbacks.log = on_log;
    if (websocket) callbacks.page_request = on_page;

    server.ctx = xt_context_new(&callbacks, dispatch);
    if (!server.ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    xt_example_threads(server.ctx, threads);
    /* NULL TLS options: a self-signed certificate made now for this host. */
    uint32_t listener =
        websocket ? (tls ? xt_start_https_listener(server.ctx, (uint16_t)port, NULL)
                         : xt_start_html_listener(server.ctx, (uint16_t)port))
        : tls ? xt_start_tls_listener(server.ctx, (uint16_t)port, server.boundary, server.boundary_len, NULL)
              : xt_start_tcp_listener(server.ctx, (uint16_t)port, server.boundary, server.boundary_len);
    if (!listener) {
        fprintf(stderr, "cannot listen on port %ld: error %d: %s\n", port, xt_last_error(), xt_last_error_message());
        xt_context_free(server.ctx);
        return 1;
    }
    printf("listening on port %u (xtnet %s, boundary %zu bytes, %s dispatch%s%s)\n",
           (unsigned)xt_listener_port(server.ctx, listener), xt_version(), server.boundary_len,
           xt_example_dispatch_name(dispatch), tls ? ", TLS" : "", websocket ? ", WebSocket" : "");
    if (tls) printf("certificate fingerprint %s\n", xt_listener_fingerprint(server.ctx, listener));
    uint32_t udp = 0;
    if (udp_port >= 0) {
        udp = xt_start_udp_listener(server.ctx, (uint16_t)udp_port);
        if (!udp) {
            fprintf(stderr, "cannot listen on UDP port %ld: error %d: %s\n", udp_port, xt_last_error(), xt_last_error_message());
            xt_context_free(server.ctx);
            return 1;
        }
        printf("udp listening on port %u\n", (unsigned)xt_listener_port(server.ctx, udp));
    }
    fflush(stdout);
    setvbuf(stdout, NULL, _IOLBF, 0);

    xt_example_serve(server.ctx, dispatch == XT_DISPATCH_POLL, max_seconds);
    long long dropped = udp ? xt_udp_dropped(server.ctx, udp) : 0;
    long long refused = udp ? xt_udp_send_failures(server.ctx, udp) : 0;
    xt_context_free(server.ctx);
    printf("stopped: %llu connections, %llu messages\n", (unsigned long long)server.connections,
           (unsigned long long)server.messages);
    if (udp)
        printf("udp: %llu datagrams, %lld dropped, %lld replies refused\n",
               (unsigned long long)server.datagrams, dropped, refused);
    return 0;
}
