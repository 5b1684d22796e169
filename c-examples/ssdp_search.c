/* ssdp_search: finds UPnP devices on the LAN with an SSDP M-SEARCH, through xtnet.
 *
 *   ssdp_search [--target ST] [--seconds N] [--interface IF]
 *
 *   --target ST      search target (default "ssdp:all"; e.g. "upnp:rootdevice")
 *   --seconds N      how long to wait for answers (default 3); the search is sent once a second
 *   --interface IF   send out of this interface only (name or address; default: every one)
 *
 * Prints one block per answer: "from ADDRESS:PORT on INTERFACE" and the answer's headers,
 * then a count.
 * Answers come back by unicast to the port the search left from, so no group is joined.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "xtnet.h"

static unsigned answers;

static void on_datagram(void *user_data, uint32_t server_id, const uint8_t *data, size_t len,
                        const XtDatagramInfo *info) {
    (void)user_data;
    (void)server_id;
    if (len < 12 || memcmp(data, "HTTP/1.1 200", 12) != 0) return; /* other searches, notifies */
    answers++;
    printf("from %s:%u on %s\n", info->remote_address, (unsigned)info->remote_port,
           info->interface_name[0] ? info->interface_name : "?");
    /* The headers, one per line, without the status line. */
    const char *p = (const char *)data, *end = p + len;
    const char *line = memchr(p, '\n', len);
    while (line && line + 1 < end) {
        const char *start = line + 1;
        line = memchr(start, '\n', (size_t)(end - start));
        size_t n = (size_t)((line ? line : end) - start);
        if (n && start[n - 1] == '\r') n--;
        if (n) printf("  %.*s\n", (int)n, start);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *target = "ssdp:all", *interface = NULL;
    long seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--target")) target = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = xt_example_number(argv[i], argv[i + 1], 3600);
        else if (!strcmp(argv[i], "--interface")) interface = argv[i + 1];
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
    }
    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.received_datagram = on_datagram;
    XtContext *ctx = xt_context_new(&callbacks, XT_DISPATCH_POLL);
    if (!ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    uint32_t udp = xt_start_udp_listener(ctx, 0);
    if (!udp) { fprintf(stderr, "UDP listener: %s\n", xt_last_error_message()); xt_context_free(ctx); return 1; }
    if (interface && xt_set_multicast_interface(ctx, udp, interface) != XT_OK) {
        fprintf(stderr, "--interface: %s\n", xt_last_error_message());
        xt_context_free(ctx);
        return 1;
    }
    xt_set_multicast_ttl(ctx, udp, 2); /* as UPnP 1.1 asks */
    char search[512];
    int n = snprintf(search, sizeof search,
                     "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
                     "MX: 1\r\nST: %s\r\nUSER-AGENT: xtnet-ssdp-search/1.0 UPnP/1.1\r\n\r\n", target);
    if (n <= 0 || (size_t)n >= sizeof search) { fprintf(stderr, "--target too long\n"); return 2; }

    time_t start = time(NULL), last_sent = 0;
    struct pollfd p = {.fd = xt_wakeup_fd(ctx), .events = POLLIN, .revents = 0};
    while (time(NULL) - start < seconds) {
        if (time(NULL) != last_sent) {
            last_sent = time(NULL);
            int rc = xt_send_datagram(ctx, udp, "239.255.255.250", 1900, (const uint8_t *)search, (size_t)n);
            if (rc != XT_OK) fprintf(stderr, "search not sent: %d %s\n", rc, xt_last_error_message());
        }
        if (poll(&p, 1, 100) > 0) xt_poll(ctx, 0);
    }
    xt_context_free(ctx);
    printf("%u answer(s)\n", answers);
    return 0;
}
