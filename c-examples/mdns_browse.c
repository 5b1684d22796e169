/* mdns_browse: asks the LAN which services of a type exist, by multicast DNS, through xtnet.
 *
 *   mdns_browse [--service _http._tcp.local] [--seconds N] [--port P]
 *
 *   --service NAME   the service type to browse (default "_services._dns-sd._udp.local": all)
 *   --seconds N      how long to listen (default 3); the query is sent once a second
 *   --port P         local port (default 5353, shared with any mDNS responder on this host, and
 *                    the group 224.0.0.251 / ff02::fb is joined; 0: a one-shot query from any
 *                    port, answered by unicast)
 *
 * Sends a PTR query (asking for unicast answers) to 224.0.0.251 and ff02::fb, port 5353, and
 * prints every record of every answer: "from ADDRESS: TYPE NAME -> DATA", for PTR, SRV, TXT,
 * A and AAAA records.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "xtnet.h"

/* Appends a DNS name ("a.b.local") as labels; returns the new length or 0 if it does not fit. */
static size_t put_name(uint8_t *out, size_t at, size_t cap, const char *name) {
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || len > 63 || at + 1 + len >= cap) return 0;
        out[at++] = (uint8_t)len;
        memcpy(out + at, p, len);
        at += len;
        p += len + (dot ? 1 : 0);
    }
    if (at >= cap) return 0;
    out[at++] = 0;
    return at;
}

/* Reads a (possibly compressed) name at *at into text; returns false on a malformed name. */
static bool get_name(const uint8_t *msg, size_t len, size_t *at, char *text, size_t cap) {
    size_t pos = *at, out = 0;
    bool jumped = false;
    for (int hops = 0; hops < 32; hops++) {
        if (pos >= len) return false;
        uint8_t l = msg[pos];
        if ((l & 0xc0) == 0xc0) {
            if (pos + 1 >= len) return false;
            if (!jumped) *at = pos + 2;
            jumped = true;
            pos = (size_t)((l & 0x3f) << 8 | msg[pos + 1]);
            continue;
        }
        if (l == 0) {
            if (!jumped) *at = pos + 1;
            if (out > 0) out--; /* drop the trailing dot */
            text[out] = 0;
            return true;
        }
        if (pos + 1 + l > len || out + l + 2 > cap) return false;
        memcpy(text + out, msg + pos + 1, l);
        out += l;
        text[out++] = '.';
        pos += 1 + l;
    }
    return false;
}

static unsigned records;

static void on_datagram(void *user_data, uint32_t server_id, const uint8_t *msg, size_t len,
                        const XtDatagramInfo *info) {
    (void)user_data;
    (void)server_id;
    if (len < 12 || !(msg[2] & 0x80)) return; /* not a response (our own query looping back) */
    unsigned qd = (unsigned)(msg[4] << 8 | msg[5]);
    unsigned rr = (unsigned)(msg[6] << 8 | msg[7]) + (unsigned)(msg[8] << 8 | msg[9]) + (unsigned)(msg[10] << 8 | msg[11]);
    size_t at = 12;
    char name[256], data[512];
    for (unsigned i = 0; i < qd; i++) {
        if (!get_name(msg, len, &at, name, sizeof name) || at + 4 > len) return;
        at += 4;
    }
    for (unsigned i = 0; i < rr; i++) {
        if (!get_name(msg, len, &at, name, sizeof name) || at + 10 > len) return;
        unsigned type = (unsigned)(msg[at] << 8 | msg[at + 1]);
        size_t rdlen = (size_t)(msg[at + 8] << 8 | msg[at + 9]);
        at += 10;
        if (at + rdlen > len) return;
        size_t rd = at;
        const char *kind = NULL;
        data[0] = 0;
        if (type == 12 && get_name(msg, len, &rd, data, sizeof data)) {
            kind = "PTR";
        } else if (type == 33 && rdlen > 6) {
            size_t t = at + 6;
            char target[256];
            if (get_name(msg, len, &t, target, sizeof target)) {
                snprintf(data, sizeof data, "%s port %u", target, (unsigned)(msg[at + 4] << 8 | msg[at + 5]));
                kind = "SRV";
            }
        } else if (type == 16) {
            size_t out = 0;
            for (size_t t = at; t < at + rdlen && out + 2 < sizeof data;) {
                size_t l = msg[t++];
                if (t + l > at + rdlen) break;
                if (out) data[out++] = ' ';
                size_t copy = l < sizeof data - out - 1 ? l : sizeof data - out - 1;
                memcpy(data + out, msg + t, copy);
                out += copy;
                t += l;
            }
            data[out] = 0;
            kind = "TXT";
        } else if (type == 1 && rdlen == 4) {
            inet_ntop(AF_INET, msg + at, data, sizeof data);
            kind = "A";
        } else if (type == 28 && rdlen == 16) {
            inet_ntop(AF_INET6, msg + at, data, sizeof data);
            kind = "AAAA";
        }
        if (kind) {
            records++;
            printf("from %s: %s %s -> %s\n", info->remote_address, kind, name, data);
        }
        at += rdlen;
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *service = "_services._dns-sd._udp.local";
    long seconds = 3, port = 5353;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--service")) service = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = xt_example_number(argv[i], argv[i + 1], 3600);
        else if (!strcmp(argv[i], "--port")) port = xt_example_number(argv[i], argv[i + 1], 65535);
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
    }
    uint8_t query[300] = {0}; /* id 0, flags 0 (a standard query), one question */
    query[5] = 1;
    size_t n = put_name(query, 12, sizeof query - 4, service);
    if (!n) { fprintf(stderr, "--service: not a valid DNS name\n"); return 2; }
    query[n++] = 0;
    query[n++] = 12;   /* type PTR */
    query[n++] = 0x80; /* "QU": unicast answers welcome */
    query[n++] = 1;    /* class IN */

    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.received_datagram = on_datagram;
    XtContext *ctx = xt_context_new(&callbacks, XT_DISPATCH_POLL);
    if (!ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    uint32_t udp = xt_start_udp_listener(ctx, (uint16_t)port);
    if (!udp) { fprintf(stderr, "UDP listener on %ld: %s\n", port, xt_last_error_message()); xt_context_free(ctx); return 1; }
    if (port == 5353) {
        /* Multicast answers; either family may be missing on a machine. */
        xt_join_multicast_group(ctx, udp, "224.0.0.251");
        xt_join_multicast_group(ctx, udp, "ff02::fb");
    }
    time_t start = time(NULL), last_sent = 0;
    struct pollfd p = {.fd = xt_wakeup_fd(ctx), .events = POLLIN, .revents = 0};
    while (time(NULL) - start < seconds) {
        if (time(NULL) != last_sent) {
            last_sent = time(NULL);
            int v4 = xt_send_datagram(ctx, udp, "224.0.0.251", 5353, query, n);
            int v6 = xt_send_datagram(ctx, udp, "ff02::fb", 5353, query, n);
            if (v4 != XT_OK && v6 != XT_OK) fprintf(stderr, "query not sent: %d %s\n", v4, xt_error_text(v4));
        }
        if (poll(&p, 1, 100) > 0) xt_poll(ctx, 0);
    }
    xt_context_free(ctx);
    printf("%u record(s)\n", records);
    return 0;
}
