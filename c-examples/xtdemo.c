/* xtdemo: the demo host. A TCP echo (framed on "\r\n"), a UDP echo, and an HTTP status page
 * that shows both at work: the listeners, every live connection (address, Bonjour name, MAC,
 * messages in and out) and the last messages. The page is live: it opens a WebSocket to /live
 * and the host pushes the new status over it whenever something happens (no reloading).
 *
 *   xtdemo [--tcp-port P] [--udp-port P] [--http-port P] [--dispatch thread|poll]
 *          [--max-seconds N] [--tls]
 *
 *   defaults: TCP 9000, UDP 9001, HTTP 8080 (0 = any free port); thread dispatch; run until
 *   SIGINT/SIGTERM. Try:  nc localhost 9000   nc -u localhost 9001   http://localhost:8080/
 *   With --tls the page is served over HTTPS (and the WebSocket over wss://) with a
 *   self-signed certificate made at start; its fingerprint is printed.
 *
 * The page is also available as JSON at /status.json. Every callback runs on one thread at a
 * time (xtnet's promise), so the state below needs no lock.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "xtnet.h"

#define RECENT 20        /* last messages shown */
#define SHOWN_MAX 200    /* connections listed on the page; the rest are counted */
#define TEXT_MAX 120     /* characters of a message shown */
#define WATCHERS_MAX 64  /* live pages at once */
#define PUSH_EVERY_MS 100 /* at most this often a burst of messages is pushed */

typedef struct Conn {
    uint64_t id;
    char address[64];
    unsigned port;
    char name[256];
    char mac[18];
    unsigned long long in, out;
    time_t since;
} Conn;

typedef struct Message {
    time_t at;
    char from[96];
    char text[TEXT_MAX * 4 + 1]; /* TEXT_MAX characters of valid UTF-8 */
} Message;

typedef struct Demo {
    XtContext *ctx;
    /* Set before the HTTP listener starts, read by the page only. */
    uint32_t tcp, udp;
    uint16_t tcp_port, udp_port;
    Conn *conns;
    size_t nconns, cap;
    Message recent[RECENT];
    size_t nrecent, next_recent;
    unsigned long long datagrams, pages, connections_total;
    uint32_t http;
    uint16_t http_port;
    /* The live pages' WebSockets, and when they were last sent the status. */
    uint64_t watchers[WATCHERS_MAX];
    size_t nwatchers;
    long long pushed_ms;
} Demo;

static void push_status(Demo *d, bool force);


/* ---------------------------------------------------------------- state */

static Conn *find_conn(Demo *d, uint64_t id) {
    for (size_t i = 0; i < d->nconns; i++)
        if (d->conns[i].id == id) return &d->conns[i];
    return NULL;
}

static void copy_text(char *to, size_t cap, const char *from) { snprintf(to, cap, "%s", from ? from : ""); }

/* Length of the UTF-8 character at s (n bytes left); 0 if the bytes there are not UTF-8. */
static size_t utf8_char(const uint8_t *s, size_t n) {
    size_t len;
    uint32_t cp, min;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) { len = 2; cp = s[0] & 0x1F; min = 0x80; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; cp = s[0] & 0x0F; min = 0x800; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; cp = s[0] & 0x07; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Keeps a message as text for the page: its first TEXT_MAX characters as valid UTF-8 (bytes
 * that are not UTF-8, such as Latin-1, become U+FFFD; control bytes become '.'), never cut
 * inside a character. */
static void remember(Demo *d, const char *from, const uint8_t *data, size_t len) {
    Message *m = &d->recent[d->next_recent];
    d->next_recent = (d->next_recent + 1) % RECENT;
    if (d->nrecent < RECENT) d->nrecent++;
    m->at = time(NULL);
    copy_text(m->from, sizeof m->from, from);
    size_t out = 0;
    for (size_t i = 0, chars = 0; i < len && chars < TEXT_MAX; chars++) {
        size_t k = utf8_char(data + i, len - i);
        if (k == 0) {
            memcpy(m->text + out, "\xEF\xBF\xBD", 3);
            out += 3;
            i++;
        } else if (k == 1 && (data[i] < 0x20 || data[i] == 0x7f)) {
            m->text[out++] = '.';
            i++;
        } else {
            memcpy(m->text + out, data + i, k);
            out += k;
            i += k;
        }
    }
    m->text[out] = '\0';
}

/* ---------------------------------------------------------------- TCP and UDP echo */

static bool on_new_connection(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    Demo *d = user_data;
    if (d->nconns == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        Conn *grown = realloc(d->conns, cap * sizeof *grown);
        if (!grown) return false; /* out of memory: refuse rather than lose track */
        d->conns = grown;
        d->cap = cap;
    }
    Conn *c = &d->conns[d->nconns++];
    memset(c, 0, sizeof *c);
    c->id = id;
    copy_text(c->address, sizeof c->address, info->remote_address);
    c->port = info->peer_port;
    copy_text(c->name, sizeof c->name, info->name);
    copy_text(c->mac, sizeof c->mac, info->mac_address);
    c->since = time(NULL);
    d->connections_total++;
    push_status(d, true);
    return true;
}

static void on_data(void *user_data, const uint8_t *data, size_t len, uint64_t id,
                    const XtConnectionInfo *info) {
    Demo *d = user_data;
    if (info->message_kind) { /* a live page asks for the status (text "refresh") */
        push_status(d, true);
        return;
    }
    Conn *c = find_conn(d, id);
    char from[96];
    snprintf(from, sizeof from, "tcp %s:%u", info->remote_address, (unsigned)info->peer_port);
    remember(d, from, data, len);
    if (c) c->in++;
    if (xt_send_data(d->ctx, id, data, len) == XT_OK && xt_send_data(d->ctx, id, (const uint8_t *)"\r\n", 2) == XT_OK) {
        if (c) c->out++;
    }
    push_status(d, false);
}

static void on_socket_error(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    Demo *d = user_data;
    (void)info;
    for (size_t i = 0; i < d->nwatchers; i++)
        if (d->watchers[i] == id) {
            d->watchers[i] = d->watchers[--d->nwatchers];
            return;
        }
    for (size_t i = 0; i < d->nconns; i++)
        if (d->conns[i].id == id) {
            d->conns[i] = d->conns[--d->nconns];
            break;
        }
    push_status(d, true);
}

static void on_datagram(void *user_data, uint32_t server_id, const uint8_t *data, size_t len,
                        const XtDatagramInfo *info) {
    Demo *d = user_data;
    char from[96];
    snprintf(from, sizeof from, "udp %s:%u", info->remote_address, (unsigned)info->remote_port);
    remember(d, from, data, len);
    d->datagrams++;
    xt_send_datagram(d->ctx, server_id, info->remote_address, info->remote_port, data, len);
    push_status(d, false);
}

/* ---------------------------------------------------------------- the status page */

typedef struct Buf {
    char *data;
    size_t len, cap;
    bool failed;
} Buf;

static void put(Buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->failed = true; return; }
        if (b->data && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *grown = realloc(b->data, cap);
        if (!grown) { b->failed = true; return; }
        b->data = grown;
        b->cap = cap;
    }
}

/* Text from peers, escaped for HTML (json: for a JSON string). */
static void put_escaped(Buf *b, const char *s, bool json) {
    for (; *s; s++) {
        switch (*s) {
        case '<': put(b, json ? "\\u003c" : "&lt;"); break;
        case '>': put(b, json ? "\\u003e" : "&gt;"); break;
        case '&': put(b, json ? "\\u0026" : "&amp;"); break;
        case '"': put(b, json ? "\\\"" : "&quot;"); break;
        case '\\': put(b, json ? "\\\\" : "\\"); break;
        default:
            if ((unsigned char)*s < 0x20) put(b, json ? "\\u%04x" : ".", (unsigned char)*s);
            else put(b, "%c", *s);
        }
    }
}

static void clock_text(time_t t, char *out, size_t cap) {
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, "%H:%M:%S", &tm);
}

/* The part of the page that changes: pushed whole to the live pages. */
static void status_fragment(Demo *d, Buf *b) {
    uint32_t http = d->http;
    unsigned http_port = d->http_port;
    put(b, "<h2>Listeners</h2><table id=\"listeners\"><tr><th>kind</th><th>id</th><th>port</th><th>activity</th></tr>");
    put(b, "<tr><td>TCP echo (\\r\\n)</td><td>%u</td><td>%u</td><td>%llu connections so far</td></tr>",
        d->tcp, d->tcp_port, d->connections_total);
    put(b, "<tr><td>UDP echo</td><td>%u</td><td>%u</td><td>%llu datagrams, %lld dropped</td></tr>",
        d->udp, d->udp_port, d->datagrams, (long long)xt_udp_dropped(d->ctx, d->udp));
    put(b, "<tr><td>HTTP status page</td><td>%u</td><td>%u</td><td>%llu pages</td></tr></table>",
        http, http_port, d->pages);
    put(b, "<h2>Connections (%zu)</h2><table id=\"connections\"><tr><th>id</th><th>address</th>"
           "<th>port</th><th>name</th><th>MAC</th><th>in</th><th>out</th><th>since</th></tr>", d->nconns);
    for (size_t i = 0; i < d->nconns && i < SHOWN_MAX; i++) {
        Conn *c = &d->conns[i];
        char since[16];
        clock_text(c->since, since, sizeof since);
        put(b, "<tr><td>%llu</td><td>", (unsigned long long)c->id);
        put_escaped(b, c->address, false);
        put(b, "</td><td>%u</td><td>", c->port);
        put_escaped(b, c->name, false);
        put(b, "</td><td>");
        put_escaped(b, c->mac, false);
        put(b, "</td><td>%llu</td><td>%llu</td><td>%s</td></tr>", c->in, c->out, since);
    }
    put(b, "</table>");
    if (d->nconns > SHOWN_MAX) put(b, "<p>and %zu more</p>", d->nconns - SHOWN_MAX);
    put(b, "<h2>Last messages</h2><ol id=\"messages\">");
    for (size_t k = 0; k < d->nrecent; k++) {
        Message *m = &d->recent[(d->next_recent + RECENT - 1 - k) % RECENT]; /* newest first */
        char at[16];
        clock_text(m->at, at, sizeof at);
        put(b, "<li>%s ", at);
        put_escaped(b, m->from, false);
        put(b, ": <code>");
        put_escaped(b, m->text, false);
        put(b, "</code></li>");
    }
    put(b, "</ol>");
}

/* The page: the status, and a script that keeps it live over a WebSocket to /live (ws:// or,
 * served over HTTPS, wss://), asking for a fresh status every 2 seconds and reconnecting when
 * the host goes away. */
static void status_html(Demo *d, Buf *b) {
    put(b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
           "<title>xtdemo</title><style>body{font-family:sans-serif;margin:2em}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
           "</style></head><body><h1>xtdemo: xtnet %s at work</h1>"
           "<p>Updates: <span id=\"ws\">connecting</span></p><div id=\"live\">", xt_version());
    status_fragment(d, b);
    put(b, "</div><p>Try <code>nc localhost %u</code>, <code>nc -u localhost %u</code>; "
           "<a href=\"/status.json\">as JSON</a>.</p>", d->tcp_port, d->udp_port);
    put(b, "<script>(function(){var s=document.getElementById('ws');function go(){"
           "var w=new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/live');"
           "var t=setInterval(function(){if(w.readyState===1)w.send('refresh');},2000);"
           "w.onmessage=function(e){document.getElementById('live').innerHTML=e.data;s.textContent='live';};"
           "w.onclose=function(){clearInterval(t);s.textContent='reconnecting';setTimeout(go,2000);};}"
           "go();})();</script></body></html>");
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Sends the status to every live page: at once when `force`, else at most every
 * PUSH_EVERY_MS (a flood of messages costs the pages one update per interval; the pages'
 * own "refresh" every 2 s catches the last of a burst). */
static void push_status(Demo *d, bool force) {
    if (!d->nwatchers) return;
    long long now = now_ms();
    if (!force && now - d->pushed_ms < PUSH_EVERY_MS) return;
    d->pushed_ms = now;
    Buf b = {0};
    status_fragment(d, &b);
    if (!b.failed)
        for (size_t i = 0; i < d->nwatchers; i++)
            xt_send_data(d->ctx, d->watchers[i], (const uint8_t *)b.data, b.len); /* one text message, copied */
    free(b.data);
}

static void status_json(Demo *d, Buf *b, unsigned http_port) {
    put(b, "{\"version\":\"%s\",\"tcp_port\":%u,\"udp_port\":%u,\"http_port\":%u,\"datagrams\":%llu,"
           "\"connections\":[", xt_version(), d->tcp_port, d->udp_port, http_port, d->datagrams);
    for (size_t i = 0; i < d->nconns; i++) {
        Conn *c = &d->conns[i];
        put(b, "%s{\"id\":%llu,\"address\":\"", i ? "," : "", (unsigned long long)c->id);
        put_escaped(b, c->address, true);
        put(b, "\",\"port\":%u,\"name\":\"", c->port);
        put_escaped(b, c->name, true);
        put(b, "\",\"mac\":\"");
        put_escaped(b, c->mac, true);
        put(b, "\",\"in\":%llu,\"out\":%llu}", c->in, c->out);
    }
    put(b, "],\"messages\":[");
    for (size_t k = 0; k < d->nrecent; k++) {
        Message *m = &d->recent[(d->next_recent + RECENT - 1 - k) % RECENT];
        put(b, "%s{\"from\":\"", k ? "," : "");
        put_escaped(b, m->from, true);
        put(b, "\",\"text\":\"");
        put_escaped(b, m->text, true);
        put(b, "\"}");
    }
    put(b, "]}");
}

static void on_page(void *user_data, uint32_t server_id, const XtHttpRequest *request,
                    XtHttpResponse *response) {
    Demo *d = user_data;
    const char *path = xt_http_request_path(request);
    const XtConnectionInfo *requester = xt_http_request_info(request);
    unsigned http_port = requester ? requester->remote_port : 0; /* the local port */
    Buf b = {0};
    d->pages++;
    (void)server_id;
    if (path && !strcmp(path, "/live")) {
        /* A live page's WebSocket: it gets the status now and whenever it changes. */
        if (d->nwatchers == WATCHERS_MAX) {
            xt_http_response_set_status(response, 503);
            return;
        }
        uint64_t id = xt_http_response_accept_websocket(response, NULL);
        if (id) {
            d->watchers[d->nwatchers++] = id;
            push_status(d, true);
        } /* else: not an upgrade; xtnet answers 400 */
        return;
    }
    if (path && !strcmp(path, "/")) {
        status_html(d, &b);
    } else if (path && !strcmp(path, "/status.json")) {
        status_json(d, &b, http_port);
        xt_http_response_add_header(response, "Content-Type", "application/json");
    } else {
        xt_http_response_set_status(response, 404);
        put(&b, "<p>Nothing here: the status page is <a href=\"/\">/</a>.</p>");
    }
    if (b.failed) {
        xt_http_response_set_status(response, 500);
    } else {
        xt_http_response_add_header(response, "Cache-Control", "no-store");
        xt_http_response_set_body(response, (const uint8_t *)b.data, b.len); /* copied */
    }
    free(b.data);
}

static void on_log(void *user_data, int32_t level, const char *message) {
    (void)user_data;
    if (level <= XT_LOG_WARNING) fprintf(stderr, "xtnet[%d]: %s\n", level, message);
}

/* ---------------------------------------------------------------- main */

static int fail(Demo *d, const char *what, long port) {
    fprintf(stderr, "cannot start the %s on port %ld: error %d: %s\n", what, port, xt_last_error(),
            xt_last_error_message());
    xt_context_free(d->ctx);
    return 1;
}

int main(int argc, char **argv) {
    long tcp_port = 9000, udp_port = 9001, http_port = 8080, max_seconds = 0;
    bool poll_mode = false, tls = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tls")) { tls = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "%s needs a value (see the top of xtdemo.c)\n", a); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--tcp-port")) tcp_port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--udp-port")) udp_port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--http-port")) http_port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--max-seconds")) max_seconds = xt_example_number(a, v, 86400L * 365);
        else if (!strcmp(a, "--dispatch")) {
            if (!strcmp(v, "poll")) poll_mode = true;
            else if (strcmp(v, "thread")) { fprintf(stderr, "--dispatch: thread or poll\n"); return 2; }
        } else { fprintf(stderr, "unknown argument %s\n", a); return 2; }
    }

    static Demo demo;
    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.user_data = &demo;
    callbacks.new_connection = on_new_connection;
    callbacks.data_available = on_data;
    callbacks.socket_error = on_socket_error;
    callbacks.received_datagram = on_datagram;
    callbacks.page_request = on_page;
    callbacks.log = on_log;
    demo.ctx = xt_context_new(&callbacks, poll_mode ? XT_DISPATCH_POLL : XT_DISPATCH_THREAD);
    if (!demo.ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }

    /* Listeners first, then the page: it reads these ids and ports. */
    demo.tcp = xt_start_tcp_listener(demo.ctx, (uint16_t)tcp_port, (const uint8_t *)"\r\n", 2);
    if (!demo.tcp) return fail(&demo, "TCP echo", tcp_port);
    demo.udp = xt_start_udp_listener(demo.ctx, (uint16_t)udp_port);
    if (!demo.udp) return fail(&demo, "UDP echo", udp_port);
    demo.tcp_port = xt_listener_port(demo.ctx, demo.tcp);
    demo.udp_port = xt_listener_port(demo.ctx, demo.udp);
    /* With --tls: HTTPS with a certificate made now for this host (NULL options). */
    uint32_t http = tls ? xt_start_https_listener(demo.ctx, (uint16_t)http_port, NULL)
                        : xt_start_html_listener(demo.ctx, (uint16_t)http_port);
    if (!http) return fail(&demo, "HTTP status page", http_port);
    demo.http = http;
    demo.http_port = xt_listener_port(demo.ctx, http);

    printf("xtdemo (xtnet %s): TCP echo on port %u, UDP echo on port %u, status page %s://localhost:%u/\n",
           xt_version(), demo.tcp_port, demo.udp_port, tls ? "https" : "http", (unsigned)demo.http_port);
    if (tls) printf("the page's certificate is self-signed, fingerprint %s\n", xt_listener_fingerprint(demo.ctx, http));
    printf("try: nc localhost %u    nc -u localhost %u    (Ctrl-C stops)\n", demo.tcp_port, demo.udp_port);
    fflush(stdout);

    xt_example_serve(demo.ctx, poll_mode, max_seconds);
    xt_context_free(demo.ctx);
    free(demo.conns);
    return 0;
}
