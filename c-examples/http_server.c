/* http_server: a small status page served by xtnet's HTTP server ("HTML listener").
 *
 *   http_server [--port P] [--max-seconds N] [--hello] [--dispatch thread|poll|inline] [--threads N]
 *
 *   --port P         port to listen on (default 8080; 0 = any free port)
 *   --max-seconds N  stop after N seconds (default 0 = until SIGINT/SIGTERM)
 *   --hello          answer every request with 200 "hello" (for benchmarks)
 *   --dispatch MODE  where callbacks run (see echo_server.c); inline: several requests at once,
 *                    so the notes are kept under a lock
 *   --threads N      XT_OPT_NETWORK_THREADS (default: the library's)
 *
 * GET / shows a form; submitting it (POST, urlencoded or multipart with a file) shows the
 * fields received, the requester (address, port, name, MAC) and the request's headers, and
 * keeps the last notes in a list. Every request is also logged on stdout as
 * "request METHOD PATH from ADDRESS: name=value ...". The first line printed is
 * "listening on port P".
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "xtnet.h"

/* A growing text buffer for the page. */
typedef struct Page {
    char *text;
    size_t len, cap;
} Page;

static void add(Page *p, const char *s, size_t n) {
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        while (cap < p->len + n + 1) cap *= 2;
        char *grown = realloc(p->text, cap);
        if (!grown) return; /* out of memory: the page is cut short */
        p->text = grown;
        p->cap = cap;
    }
    memcpy(p->text + p->len, s, n);
    p->len += n;
    p->text[p->len] = 0;
}

static void put(Page *p, const char *s) { add(p, s, strlen(s)); }

/* Appends `s` with HTML's special characters escaped. */
static void put_escaped(Page *p, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': put(p, "&lt;"); break;
        case '>': put(p, "&gt;"); break;
        case '&': put(p, "&amp;"); break;
        case '"': put(p, "&quot;"); break;
        default: add(p, s, 1);
        }
    }
}

#define NOTES 10
static char *notes[NOTES];
static unsigned note_count;
static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;
static bool hello;
static atomic_ullong requests;

static void remember(const char *note) {
    pthread_mutex_lock(&notes_lock);
    free(notes[note_count % NOTES]);
    notes[note_count % NOTES] = strdup(note);
    note_count++;
    pthread_mutex_unlock(&notes_lock);
}

static void on_page(void *user_data, uint32_t server_id, const XtHttpRequest *req, XtHttpResponse *resp) {
    (void)user_data;
    (void)server_id;
    atomic_fetch_add_explicit(&requests, 1, memory_order_relaxed);
    if (hello) {
        xt_http_response_set_body(resp, (const uint8_t *)"hello", 5);
        xt_http_response_add_header(resp, "Content-Type", "text/plain");
        return;
    }
    const XtConnectionInfo *who = xt_http_request_info(req);
    const char *method = xt_http_request_method(req), *path = xt_http_request_path(req);
    printf("request %s %s from %s:", method, path, who->remote_address);
    size_t fields = xt_http_request_form_count(req);
    for (size_t i = 0; i < fields; i++) {
        const char *name, *value;
        if (xt_http_request_form_at(req, i, &name, &value)) printf(" %s=%s", name, value);
    }
    printf("\n");
    fflush(stdout);

    if (strcmp(path, "/") != 0) {
        xt_http_response_set_status(resp, 404);
        xt_http_response_set_body(resp, (const uint8_t *)"not found\n", 10);
        xt_http_response_add_header(resp, "Content-Type", "text/plain");
        return;
    }
    const char *note = xt_http_request_form_value(req, "note");
    if (note && *note) remember(note);

    Page p = {0};
    put(&p, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>xtnet status</title></head><body>"
            "<h1>xtnet status</h1>"
            "<form method=\"post\" action=\"/\" enctype=\"multipart/form-data\">"
            "<label>Note <input name=\"note\" id=\"note\"></label> "
            "<label>Device <select name=\"device\"><option>Porch Light</option><option>Garage Door</option></select></label> "
            "<label>File <input type=\"file\" name=\"attachment\"></label> "
            "<button type=\"submit\" id=\"send\">Send</button></form>");
    put(&p, "<h2>You</h2><p id=\"requester\">");
    put_escaped(&p, who->remote_address);
    char line[160];
    snprintf(line, sizeof line, " port %u, name ", (unsigned)who->peer_port);
    put(&p, line);
    put_escaped(&p, who->name);
    put(&p, ", MAC ");
    put_escaped(&p, who->mac_address);
    put(&p, "</p><h2>Fields received</h2><ul id=\"fields\">");
    for (size_t i = 0; i < fields; i++) {
        const char *name, *value;
        if (!xt_http_request_form_at(req, i, &name, &value)) continue;
        put(&p, "<li>");
        put_escaped(&p, name);
        put(&p, " = ");
        put_escaped(&p, value);
        put(&p, "</li>");
    }
    size_t files = xt_http_request_file_count(req);
    for (size_t i = 0; i < files; i++) {
        const char *field, *filename, *type;
        const uint8_t *data;
        size_t len;
        if (!xt_http_request_file_at(req, i, &field, &filename, &type, &data, &len)) continue;
        put(&p, "<li>file ");
        put_escaped(&p, filename);
        snprintf(line, sizeof line, " (%zu bytes)</li>", len);
        put(&p, line);
    }
    put(&p, "</ul><h2>Last notes</h2><ol id=\"notes\">");
    pthread_mutex_lock(&notes_lock);
    for (unsigned i = note_count > NOTES ? note_count - NOTES : 0; i < note_count; i++) {
        put(&p, "<li>");
        put_escaped(&p, notes[i % NOTES]);
        put(&p, "</li>");
    }
    pthread_mutex_unlock(&notes_lock);
    put(&p, "</ol><h2>Request headers</h2><table id=\"headers\">");
    size_t headers = xt_http_request_header_count(req);
    for (size_t i = 0; i < headers; i++) {
        const char *name, *value;
        if (!xt_http_request_header_at(req, i, &name, &value)) continue;
        put(&p, "<tr><td>");
        put_escaped(&p, name);
        put(&p, "</td><td>");
        put_escaped(&p, value);
        put(&p, "</td></tr>");
    }
    put(&p, "</table></body></html>\n");
    xt_http_response_set_body(resp, (const uint8_t *)p.text, p.len); /* copied */
    free(p.text);
}

static void on_log(void *user_data, int32_t level, const char *message) {
    (void)user_data;
    fprintf(stderr, "xtnet[%d]: %s\n", level, message);
}

int main(int argc, char **argv) {
    long port = 8080, max_seconds = 0, threads = 0;
    uint32_t dispatch = XT_DISPATCH_THREAD;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--hello")) { hello = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "%s needs a value\n", argv[i]); return 2; }
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--port")) port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--max-seconds")) max_seconds = xt_example_number(a, v, 86400L * 365);
        else if (!strcmp(a, "--dispatch")) dispatch = xt_example_dispatch(v);
        else if (!strcmp(a, "--threads")) threads = xt_example_number(a, v, 256);
        else { fprintf(stderr, "unknown argument %s\n", a); return 2; }
    }
    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.page_request = on_page;
    callbacks.log = on_log;
    XtContext *ctx = xt_context_new(&callbacks, dispatch);
    if (!ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    xt_example_threads(ctx, threads);
    uint32_t server = xt_start_html_listener(ctx, (uint16_t)port);
    if (!server) {
        fprintf(stderr, "cannot listen on port %ld: error %d: %s\n", port, xt_last_error(), xt_last_error_message());
        xt_context_free(ctx);
        return 1;
    }
    printf("listening on port %u\n", (unsigned)xt_listener_port(ctx, server));
    fflush(stdout);

    xt_example_serve(ctx, dispatch == XT_DISPATCH_POLL, max_seconds);
    xt_context_free(ctx);
    printf("stopped: %llu requests\n", (unsigned long long)requests);
    for (unsigned i = 0; i < NOTES; i++) free(notes[i]);
    return 0;
}
