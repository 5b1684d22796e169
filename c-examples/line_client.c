/* line_client: sends lines over an outgoing xtnet connection and prints each reply.
 *
 *   line_client [--host H] [--port P] [--boundary STR] [--timeout-ms N]
 *               [--tls] [--pin SHA256] [--ca FILE] [LINE...]
 *
 * With --tls the connection is TLS: trusting any certificate and printing its fingerprint
 * (trust on first use: pin it next time with --pin), only the key --pin names, or only
 * certificates from the CA file --ca (name checked). A refused certificate's fingerprint is
 * printed too.
 *
 * Sends each LINE (or each line of standard input when none are given) followed by the
 * boundary (default "\r\n"), prints every framed reply as "reply: ...", and disconnects once as
 * many replies as lines have come back. Exits 0 on success, 1 on a connection error or timeout.
 * Uses thread dispatch: callbacks run on xtnet's thread; main waits on a condition variable.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "xtnet.h"

#define MAX_LINES 1024

typedef struct Client {
    XtContext *ctx;
    unsigned char boundary[256];
    size_t boundary_len;
    char *lines[MAX_LINES];
    size_t line_count, replies;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool done;
    int error;
} Client;

static void finish(Client *c, int error) {
    pthread_mutex_lock(&c->lock);
    c->done = true;
    c->error = error;
    pthread_cond_signal(&c->done_cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_connected(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    Client *c = user_data;
    printf("connected to %s port %u from local port %u\n", info->remote_address,
           (unsigned)info->peer_port, (unsigned)info->remote_port);
    if (info->tls_protocol[0])
        printf("%s, peer fingerprint %s\n", info->tls_protocol, info->tls_peer_fingerprint);
    for (size_t i = 0; i < c->line_count; i++) {
        xt_send_data(c->ctx, id, (const uint8_t *)c->lines[i], strlen(c->lines[i]));
        xt_send_data(c->ctx, id, c->boundary, c->boundary_len);
    }
    if (c->line_count == 0) xt_disconnect(c->ctx, id);
}

static void on_data(void *user_data, const uint8_t *data, size_t len, uint64_t id,
                    const XtConnectionInfo *info) {
    Client *c = user_data;
    (void)info;
    printf("reply: %.*s\n", (int)len, (const char *)data);
    if (++c->replies == c->line_count) xt_disconnect(c->ctx, id);
}

static void on_socket_error(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    Client *c = user_data;
    (void)id;
    bool complete = c->replies >= c->line_count;
    if (!complete || info->error_number != XT_ERR_LOST_CONNECTION)
        fprintf(stderr, "connection ended: error %d: %s\n", info->error_number, info->error_message);
    if (info->error_number == XT_ERR_TLS_UNTRUSTED)
        printf("refused certificate fingerprint %s\n", info->tls_peer_fingerprint);
    finish(c, complete ? 0 : info->error_number);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *boundary_text = "\\r\\n", *pin = NULL, *ca = NULL;
    long port = 9000, timeout_ms = 10000;
    bool tls = false;
    static Client client;
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i += 2) {
        if (!strcmp(argv[i], "--tls")) { tls = true; i--; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "%s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = xt_example_number(argv[i], argv[i + 1], 65535);
        else if (!strcmp(argv[i], "--boundary")) boundary_text = argv[i + 1];
        else if (!strcmp(argv[i], "--timeout-ms")) timeout_ms = xt_example_number(argv[i], argv[i + 1], 3600000);
        else if (!strcmp(argv[i], "--pin")) { pin = argv[i + 1]; tls = true; }
        else if (!strcmp(argv[i], "--ca")) { ca = argv[i + 1]; tls = true; }
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
    }
    static char stdin_lines[MAX_LINES][1024];
    if (i < argc) {
        for (; i < argc && client.line_count < MAX_LINES; i++) client.lines[client.line_count++] = argv[i];
    } else {
        while (client.line_count < MAX_LINES && fgets(stdin_lines[client.line_count], 1024, stdin)) {
            stdin_lines[client.line_count][strcspn(stdin_lines[client.line_count], "\r\n")] = 0;
            client.lines[client.line_count] = stdin_lines[client.line_count];
            client.line_count++;
        }
    }
    long blen = xt_example_unescape(boundary_text, client.boundary, sizeof client.boundary);
    if (blen <= 0) { fprintf(stderr, "--boundary: must be 1..256 bytes with valid escapes\n"); return 2; }
    client.boundary_len = (size_t)blen;
    pthread_mutex_init(&client.lock, NULL);
    pthread_cond_init(&client.done_cond, NULL);

    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.user_data = &client;
    callbacks.connected = on_connected;
    callbacks.data_available = on_data;
    callbacks.socket_error = on_socket_error;
    client.ctx = xt_context_new(&callbacks, XT_DISPATCH_THREAD);
    if (!client.ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    xt_set_option(client.ctx, XT_OPT_CONNECT_TIMEOUT_MS, timeout_ms);
    XtTlsOptions tls_options;
    memset(&tls_options, 0, sizeof tls_options);
    tls_options.struct_size = sizeof tls_options;
    tls_options.trust = pin ? XT_TRUST_PIN : ca ? XT_TRUST_CA_FILE : XT_TRUST_ANY;
    tls_options.pin_sha256 = pin; /* copied by the call */
    tls_options.ca_file = ca;
    uint64_t id = tls ? xt_open_tls_connection(client.ctx, host, (uint16_t)port, client.boundary,
                                               client.boundary_len, &tls_options)
                      : xt_open_tcp_connection(client.ctx, host, (uint16_t)port, client.boundary,
                                               client.boundary_len);
    if (!id) {
        fprintf(stderr, "cannot open a connection: error %d: %s\n", xt_last_error(), xt_last_error_message());
        xt_context_free(client.ctx);
        return 1;
    }

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&client.lock);
    while (!client.done)
        if (pthread_cond_timedwait(&client.done_cond, &client.lock, &deadline)) break;
    bool done = client.done;
    int error = client.error;
    pthread_mutex_unlock(&client.lock);
    xt_context_free(client.ctx); /* after the wait: never from inside a callback */
    if (!done) { fprintf(stderr, "timed out after %ld ms\n", timeout_ms); return 1; }
    return error ? 1 : 0;
}
