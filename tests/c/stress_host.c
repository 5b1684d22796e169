/* A small stress host for the sanitizer and valgrind runs (tests/sanitizers.rs): several rounds
 * of a context that talks to itself over every protocol — outgoing TCP connections to its own
 * framed listener (echoed, disconnected, some reset by a stopped listener), datagrams to its
 * own UDP listener, raw HTTP requests to its own HTML listener — plus bad calls (NULLs, stale
 * and wrong-kind ids), then frees it. Exits 0 when every connection got exactly one final
 * event and every echo came back; prints what it counted. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xtnet.h"

#define CONNS 40
#define LINES 20

typedef struct Host {
    XtContext *ctx;
    uint32_t tcp, udp, http;
    uint16_t http_port;
    _Atomic int finals_accepted, finals_web, finals_outgoing;
    _Atomic int connected, finals, client_lines, server_lines, datagrams, pages, responses;
    _Atomic uint64_t outgoing[CONNS];
    _Atomic uint64_t web[8];
} Host;


static void on_connected(void *ud, uint64_t id, const XtConnectionInfo *info) {
    Host *h = ud;
    atomic_fetch_add(&h->connected, 1);
    if (info->peer_port == h->http_port) return; /* a raw HTTP client: it sends its request later */
    char line[64];
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(line, sizeof line, "line %d of %llu\n", i, (unsigned long long)id);
        if (xt_send_data(h->ctx, id, (const uint8_t *)line, (size_t)n) != XT_OK) return;
    }
}

static void on_data(void *ud, const uint8_t *data, size_t len, uint64_t id,
                    const XtConnectionInfo *info) {
    Host *h = ud;
    /* Told apart by the info alone (an id may not be stored yet when its first event runs). */
    if (info->server_id == 0 && info->peer_port == h->http_port) { /* a raw HTTP client */
        if (len >= 15 && memcmp(data, "HTTP/1.1 200 OK", 15) == 0) atomic_fetch_add(&h->responses, 1);
        return;
    }
    if (info->server_id == 0) { /* one of our outgoing connections: its echo came back */
        if (atomic_fetch_add(&h->client_lines, 1) % LINES == LINES - 1) xt_disconnect(h->ctx, id);
        return;
    }
    atomic_fetch_add(&h->server_lines, 1);
    xt_send_data(h->ctx, id, data, len); /* echo the message and its boundary */
    xt_send_data(h->ctx, id, (const uint8_t *)"\n", 1);
}

static void on_error(void *ud, uint64_t id, const XtConnectionInfo *info) {
    Host *h = ud;
    (void)id;
    atomic_fetch_add(&h->finals, 1);
    if (info->server_id) atomic_fetch_add(&h->finals_accepted, 1);
    else if (info->peer_port == h->http_port) atomic_fetch_add(&h->finals_web, 1);
    else atomic_fetch_add(&h->finals_outgoing, 1);
}

static void on_datagram(void *ud, uint32_t server_id, const uint8_t *data, size_t len,
                        const XtDatagramInfo *info) {
    Host *h = ud;
    (void)server_id;
    (void)info;
    if (len > 0 && data[0] == 'p') atomic_fetch_add(&h->datagrams, 1);
}

static void on_page(void *ud, uint32_t server_id, const XtHttpRequest *req, XtHttpResponse *resp) {
    Host *h = ud;
    (void)server_id;
    atomic_fetch_add(&h->pages, 1);
    const char *who = xt_http_request_form_value(req, "who");
    char body[128];
    int n = snprintf(body, sizeof body, "hello %s %s", who ? who : "?", xt_http_request_path(req));
    xt_http_response_add_header(resp, "Content-Type", "text/plain");
    xt_http_response_set_body(resp, (const uint8_t *)body, (size_t)n);
}

static void bad_calls(Host *h) {
    (void)xt_send_data(NULL, 1, (const uint8_t *)"x", 1);
    (void)xt_send_data(h->ctx, 999999, (const uint8_t *)"x", 1);
    (void)xt_send_data(h->ctx, 1, NULL, 5);
    (void)xt_stop_udp_listener(h->ctx, h->tcp);
    (void)xt_join_multicast_group(h->ctx, h->udp, "not a group");
    (void)xt_join_multicast_group(h->ctx, h->udp, NULL);
    (void)xt_send_datagram(h->ctx, h->udp, "\xff\xfe", 9, (const uint8_t *)"x", 1);
    (void)xt_open_tcp_connection(h->ctx, NULL, 1, NULL, 0);
    (void)xt_http_request_path(NULL);
    (void)xt_http_response_set_status(NULL, 200);
    (void)xt_set_option(h->ctx, 9999, 1);
    (void)xt_last_error_message();
}

static int wait_until(_Atomic int *v, int want, int ms) {
    for (int i = 0; i < ms / 5 && atomic_load(v) < want; i++) usleep(5000);
    return atomic_load(v) >= want;
}

static int round_trip(int round) {
    Host *h = calloc(1, sizeof *h);
    XtCallbacks cb = {.struct_size = sizeof cb, .user_data = h, .connected = on_connected,
                      .data_available = on_data, .socket_error = on_error,
                      .received_datagram = on_datagram, .page_request = on_page};
    h->ctx = xt_context_new(&cb, XT_DISPATCH_THREAD);
    if (!h->ctx) return 1;
    h->tcp = xt_start_tcp_listener(h->ctx, 0, (const uint8_t *)"\n", 1);
    h->udp = xt_start_udp_listener(h->ctx, 0);
    h->http = xt_start_html_listener(h->ctx, 0);
    if (!h->tcp || !h->udp || !h->http) return 2;
    uint16_t tcp_port = xt_listener_port(h->ctx, h->tcp), udp_port = xt_listener_port(h->ctx, h->udp);
    uint16_t http_port = xt_listener_port(h->ctx, h->http);
    h->http_port = http_port;
    for (int i = 0; i < CONNS; i++)
        atomic_store(&h->outgoing[i],
                     xt_open_tcp_connection(h->ctx, "127.0.0.1", tcp_port, (const uint8_t *)"\n", 1));
    for (int i = 0; i < 200; i++)
        xt_send_datagram(h->ctx, h->udp, "127.0.0.1", udp_port, (const uint8_t *)"ping", 4);
    for (int i = 0; i < 8; i++)
        atomic_store(&h->web[i], xt_open_tcp_connection(h->ctx, "127.0.0.1", http_port, NULL, 0));
    bad_calls(h);
    int ok = wait_until(&h->client_lines, CONNS * LINES, 10000);
    int echoes_ok = ok;
    for (int i = 0; i < 8; i++) {
        char req[128];
        int n = snprintf(req, sizeof req, "GET /page/%d?who=stress HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i);
        for (int tries = 0; tries < 200 && xt_send_data(h->ctx, atomic_load(&h->web[i]), (const uint8_t *)req, (size_t)n) == XT_ERR_INVALID_STATE; tries++)
            usleep(5000); /* not connected yet */
    }
    int pages_ok = wait_until(&h->responses, 8, 10000);
    int datagrams_ok = wait_until(&h->datagrams, 1, 5000);
    ok = ok && pages_ok && datagrams_ok;
    /* The last round stops the listener under live connections: they end with 102 too. */
    if (round % 3 == 2) xt_stop_tcp_listener(h->ctx, h->tcp);
    int finals_ok = wait_until(&h->finals, CONNS * 2 + 8, 10000);
    ok = ok && finals_ok;
    if (!ok) printf("round %d waits: echoes %d, pages %d, datagrams %d, finals %d (%d of %d: accepted %d, "
                    "outgoing %d, web %d)\n", round, echoes_ok, pages_ok, datagrams_ok, finals_ok,
                    atomic_load(&h->finals), CONNS * 2 + 8, atomic_load(&h->finals_accepted),
                    atomic_load(&h->finals_outgoing), atomic_load(&h->finals_web));
    xt_context_free(h->ctx); /* every connection's final event came; nothing runs after this */
    int exact = atomic_load(&h->finals) == CONNS * 2 + 8 && atomic_load(&h->server_lines) == CONNS * LINES;
    if (getenv("STRESS_VERBOSE") || !ok || !exact) printf("round %d: ok %d, connected %d, finals %d, client lines %d, server lines %d, datagrams %d, "
           "pages %d, responses %d\n", round, ok, atomic_load(&h->connected), atomic_load(&h->finals),
           atomic_load(&h->client_lines), atomic_load(&h->server_lines), atomic_load(&h->datagrams),
           atomic_load(&h->pages), atomic_load(&h->responses));
    free(h);
    return ok && exact ? 0 : 10 + round;
}

/* stress_host [SECONDS]: rounds until SECONDS (default 3) have passed, at least three. */
int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int round = 0;
    for (;; round++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double elapsed = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
        if (round >= 3 && elapsed >= seconds) break;
        int rc = round_trip(round);
        if (rc) {
            printf("round %d failed (%d)\n", round, rc);
            return rc;
        }
    }
    printf("stress host: ok, %d rounds\n", round);
    return 0;
}
