/* ssdp_device: a small UPnP root device that control points (Home Assistant's
 * async-upnp-client, GUPnP's gssdp-discover, ...) find on the LAN, through xtnet.
 *
 *   ssdp_device [--http-port P] [--name TEXT] [--max-seconds N]
 *
 * It answers every M-SEARCH for ssdp:all, upnp:rootdevice, its device type or its UUID, from
 * the interface the search came in on (xt_send_datagram_on), with a LOCATION on the address of
 * this host that the searcher reaches (xt_local_address_for) — right on a multi-homed host —
 * and serves its description at that LOCATION over xtnet's HTTP server. Its group stays
 * joined as interfaces come and go (xtnet follows them); each change is printed.
 *
 * Prints "device ... on http port P", then one line per answered search.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "xtnet.h"

#define DEVICE_TYPE "urn:schemas-upnp-org:device:Basic:1"
#define UUID "uuid:2f402f80-da50-11e1-9b23-00178801c0de"

typedef struct Device {
    XtContext *ctx;
    uint32_t udp;
    uint16_t http_port;
    const char *name;
    unsigned long long answered;
} Device;

/* The value of header `name` in an SSDP message (copied into out), or false. */
static bool header(const uint8_t *data, size_t len, const char *name, char *out, size_t cap) {
    const char *p = (const char *)data, *end = p + len;
    size_t n = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *stop = eol ? eol : end;
        if ((size_t)(stop - p) > n && !strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1;
            while (v < stop && *v == ' ') v++;
            size_t vlen = (size_t)(stop - v);
            if (vlen && v[vlen - 1] == '\r') vlen--;
            snprintf(out, cap, "%.*s", (int)vlen, v);
            return true;
        }
        p = stop + 1;
    }
    return false;
}

static void on_datagram(void *user_data, uint32_t server_id, const uint8_t *data, size_t len,
                        const XtDatagramInfo *info) {
    Device *d = user_data;
    if (len < 8 || memcmp(data, "M-SEARCH", 8) != 0) return; /* NOTIFYs of others */
    char st[256];
    if (!header(data, len, "ST", st, sizeof st)) return;
    bool all = !strcmp(st, "ssdp:all");
    const char *targets[] = {"upnp:rootdevice", UUID, DEVICE_TYPE};
    for (size_t i = 0; i < 3; i++) {
        if (!all && strcmp(st, targets[i])) continue;
        char local[64];
        if (xt_local_address_for(d->ctx, info->remote_address, local, sizeof local) != XT_OK) return;
        char usn[256];
        if (i == 1) snprintf(usn, sizeof usn, "%s", UUID);
        else snprintf(usn, sizeof usn, "%s::%s", UUID, targets[i]);
        char answer[768];
        int n = snprintf(answer, sizeof answer,
                         "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n"
                         "LOCATION: http://%s:%u/desc.xml\r\nSERVER: xtnet/%s UPnP/1.1 ssdp_device/1.0\r\n"
                         "ST: %s\r\nUSN: %s\r\n\r\n",
                         local, (unsigned)d->http_port, xt_version(), targets[i], usn);
        /* Out of the interface the search came in on, to the searcher's address and port. */
        int rc = info->interface_name[0]
                     ? xt_send_datagram_on(d->ctx, server_id, info->interface_name, info->remote_address,
                                           info->remote_port, (const uint8_t *)answer, (size_t)n)
                     : xt_send_datagram(d->ctx, server_id, info->remote_address, info->remote_port,
                                        (const uint8_t *)answer, (size_t)n);
        if (rc != XT_OK) {
            fprintf(stderr, "answer to %s not sent: %d %s\n", info->remote_address, rc, xt_last_error_message());
            return;
        }
    }
    d->answered++;
    printf("answered %s from %s:%u on %s (LOCATION on our address for it)\n", st, info->remote_address,
           (unsigned)info->remote_port, info->interface_name[0] ? info->interface_name : "?");
    fflush(stdout);
}

static void on_page(void *user_data, uint32_t server_id, const XtHttpRequest *request, XtHttpResponse *response) {
    Device *d = user_data;
    (void)server_id;
    const char *path = xt_http_request_path(request);
    if (!path || strcmp(path, "/desc.xml")) {
        xt_http_response_set_status(response, 404);
        return;
    }
    char xml[1024];
    int n = snprintf(xml, sizeof xml,
                     "<?xml version=\"1.0\"?>\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\">"
                     "<specVersion><major>1</major><minor>0</minor></specVersion><device>"
                     "<deviceType>%s</deviceType><friendlyName>%s</friendlyName>"
                     "<manufacturer>xtnet</manufacturer><modelName>ssdp_device</modelName>"
                     "<UDN>%s</UDN><serviceList></serviceList></device></root>\n",
                     DEVICE_TYPE, d->name, UUID);
    xt_http_response_add_header(response, "Content-Type", "text/xml; charset=\"utf-8\"");
    xt_http_response_set_body(response, (const uint8_t *)xml, (size_t)n);
}

static void on_interface_changed(void *user_data, const char *name, const char *address, bool up) {
    (void)user_data;
    printf("interface %s %s %s\n", name, address, up ? "up" : "down");
    fflush(stdout);
}

int main(int argc, char **argv) {
    long http_port = 0, max_seconds = 0;
    static Device device = {.name = "xtnet demo device"};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--http-port")) http_port = xt_example_number(argv[i], argv[i + 1], 65535);
        else if (!strcmp(argv[i], "--name")) device.name = argv[i + 1];
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = xt_example_number(argv[i], argv[i + 1], 86400L * 365);
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
    }
    XtCallbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.struct_size = sizeof callbacks;
    callbacks.user_data = &device;
    callbacks.received_datagram = on_datagram;
    callbacks.page_request = on_page;
    callbacks.interface_changed = on_interface_changed;
    device.ctx = xt_context_new(&callbacks, XT_DISPATCH_POLL);
    if (!device.ctx) { fprintf(stderr, "xt_context_new: %s\n", xt_last_error_message()); return 1; }
    uint32_t http = xt_start_html_listener(device.ctx, (uint16_t)http_port);
    device.udp = xt_start_udp_listener(device.ctx, 1900);
    if (!http || !device.udp || !xt_join_multicast_group(device.ctx, device.udp, "239.255.255.250")) {
        fprintf(stderr, "cannot start: %d %s\n", xt_last_error(), xt_last_error_message());
        xt_context_free(device.ctx);
        return 1;
    }
    device.http_port = xt_listener_port(device.ctx, http);
    xt_set_multicast_ttl(device.ctx, device.udp, 2);
    printf("device \"%s\" %s on http port %u\n", device.name, UUID, (unsigned)device.http_port);
    fflush(stdout);

    xt_example_serve(device.ctx, true, max_seconds); /* callbacks run here */
    xt_context_free(device.ctx);
    printf("stopped: %llu searches answered\n", device.answered);
    return 0;
}
