/* who_is_there: who is talking to this machine? Prints each peer that connects (TCP) or sends
 * (UDP) with its address, its Bonjour/local name and its MAC address, as xtnet finds them.
 *
 *   who_is_there [--port P] [--udp-port P] [--join GROUP] [--lookup-ms N] [--max-seconds N]
 *
 *   --port P         TCP port to listen on (default 9009; 0 = any free port)
 *   --udp-port P     UDP port to listen on (default: the TCP port's number)
 *   --join GROUP     also join a multicast group on the UDP port (e.g. --udp-port 1900
 *                    --join 239.255.255.250 lists every SSDP device on the LAN)
 *   --lookup-ms N    how long a new connection may wait for its peer's name (default 250)
 *   --max-seconds N  stop after N seconds (default 0 = run until SIGINT/SIGTERM)
 *
 * Output, one line per event (a UDP sender only when first seen or when what is known of it
 * changes, so a chatty device does not flood the screen):
 *   listening on tcp port P, udp port U
 *   tcp 192.168.1.20 port 53122: name kitchen.local, mac 3c:22:fb:01:02:03
 *   udp 192.168.1.31 port 1900: name ?, mac 00:11:32:aa:bb:cc
 * Connections are accepted, their data is ignored, and they are closed after being listed.
 * Try it on a LAN: who_is_there, then from another machine: nc <this machine> 9009
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "xtnet.h"

/* What was last printed per UDP sender: a small table, oldest entry replaced when full. */
#define SENDERS 256
typedef struct Sender {
    char address[64];
    char name[256];
    char mac[18];
} Sender;

typedef struct Watcher {
    XtContext *ctx;
    Sender senders[SENDERS];
    size_t next_sender;
} Watcher;

static void copy_text(char *to, size_t cap, const char *from) {
    snprintf(to, cap, "%s", from ? from : "");
}

static bool on_new_connection(void *user_data, uint64_t id, const XtConnectionInfo *info) {
    Watcher *w = user_data;
    printf("tcp %s port %u: name %s, mac %s\n", info->remote_address, (unsigned)info->peer_port,
           info->name, info->mac_address);
    /* Listed: now let it go (the close is queued; it happens after this callback). */
    xt_disconnect(w->ctx, id);
    return true;
}

static void on_datagram(void *user_data, uint32_t server_id, const uint8_t *data, size_t len,
                        const XtDatagramInfo *info) {
    Watcher *w = user_data;
    (void)server_id; (void)data; (void)len;
    Sender *seen = NULL;
    for (size_t i = 0; i < SENDERS; i++)
        if (!strcmp(w->senders[i].address, info->remote_address)) seen = &w->senders[i];
    if (seen && !strcmp(seen->name, info->name) && !strcmp(seen->mac, info->mac_address)) return;
    if (!seen) {
        seen = &w->senders[w->next_sender];
        w->next_sender = (w->next_sender + 1) % SENDERS;
        copy_text(seen->address, sizeof seen->address, info->remote_address);
    }
    copy_text(seen->name, sizeof seen->name, info->name);
    copy_text(seen->mac, sizeof seen->mac, info->mac_address);
    static const char *kinds[] = {"?", "unicast", "broadcast", "multicast"};
    printf("udp %s port %u: name %s, mac %s (%s to %s on %s)\n", info->remote_address,
           (unsigned)info->remote_port, info->name, info->mac_address, kinds[info->kind <= 3 ? info->kind : 0],
           info->local_address, info->interface_name[0] ? info->interface_name : "?");
}

static void on_log(void *user_data, int32_t level, const char *message) {
    (void)user_data;
    if (level <= XT_LOG_WARNING) fprintf(stderr, "xtnet[%d]: %s\n", level, message);
}

int main(int argc, char **argv) {
    long port = 9009, udp_port = -1, lookup_ms = 250, max_seconds = 0;
    const char *group = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) { fprintf(stderr, "%s needs a value (see the top of who_is_there.c)\n", a); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--port")) port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--udp-port")) udp_port = xt_example_number(a, v, 65535);
        else if (!strcmp(a, "--join")) group = v;
        else if (!strcmp(a, "--lookup-ms")) lookup_ms = xt_example_number(a, v, 60000);
        else if (!strcmp(a, "--max-seconds")) max_seconds = xt_example_number(a, v, 86400L * 365);
        else { fprintf(stderr, "unknown argument %s\n", a); return 2; }
    }

    static Watcher watcher;
    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.user_data = &watcher;
    callbacks.new_connection = on_new_connection;
    /* No data_available: what a peer sends is not needed (xtnet drops it). */
    callbacks.received_datagram = on_datagram;
    callbacks.log = on_log;

    watcher.ctx = xt_context_new(&callbacks, XT_DISPATCH_THREAD);
    if (!watcher.ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    if (xt_set_option(watcher.ctx, XT_OPT_PEER_LOOKUP_MS, lookup_ms) != XT_OK) {
        fprintf(stderr, "--lookup-ms: %s\n", xt_last_error_message());
        xt_context_free(watcher.ctx);
        return 2;
    }
    uint32_t tcp = xt_start_tcp_listener(watcher.ctx, (uint16_t)port, NULL, 0);
    if (!tcp) {
        fprintf(stderr, "cannot listen on TCP port %ld: error %d: %s\n", port, xt_last_error(), xt_last_error_message());
        xt_context_free(watcher.ctx);
        return 1;
    }
    uint16_t tcp_port = xt_listener_port(watcher.ctx, tcp);
    uint32_t udp = xt_start_udp_listener(watcher.ctx, (uint16_t)(udp_port >= 0 ? udp_port : tcp_port));
    if (!udp) {
        fprintf(stderr, "cannot listen on UDP port %ld: error %d: %s\n", udp_port >= 0 ? udp_port : (long)tcp_port,
                xt_last_error(), xt_last_error_message());
        xt_context_free(watcher.ctx);
        return 1;
    }
    if (group && !xt_join_multicast_group(watcher.ctx, udp, group)) {
        fprintf(stderr, "cannot join %s: error %d: %s\n", group, xt_last_error(), xt_last_error_message());
        xt_context_free(watcher.ctx);
        return 1;
    }
    printf("listening on tcp port %u, udp port %u\n", (unsigned)tcp_port,
           (unsigned)xt_listener_port(watcher.ctx, udp));
    fflush(stdout);
    setvbuf(stdout, NULL, _IOLBF, 0);

    xt_example_serve(watcher.ctx, false, max_seconds);
    xt_context_free(watcher.ctx);
    return 0;
}
