/* Compile-time check of include/xtnet.h against the pinned C contract (DESIGN.md): every
 * name, signature, constant and struct field order. Compiled by tests/header.rs with -Werror;
 * a mismatch is a compile error. */
#include <stddef.h>
#include <stdint.h>
#include "xtnet.h"

/* ---- library and errors ---- */
const char *(*const p_version)(void) = xt_version;
int32_t (*const p_last_error)(void) = xt_last_error;
const char *(*const p_last_error_message)(void) = xt_last_error_message;
const char *(*const p_error_text)(int32_t) = xt_error_text;
_Static_assert(XT_OK == 0, "XT_OK");
_Static_assert(XT_ERR_LOST_CONNECTION == 102, "102");
_Static_assert(XT_ERR_NAME_RESOLUTION == 103, "103");
_Static_assert(XT_ERR_ADDRESS_IN_USE == 105, "105");
_Static_assert(XT_ERR_INVALID_STATE == 106, "106");
_Static_assert(XT_ERR_INVALID_PORT == 107, "107");
_Static_assert(XT_ERR_OUT_OF_MEMORY == 108, "108");
_Static_assert(XT_ERR_INVALID_ARGUMENT == 1001, "1001");
_Static_assert(XT_ERR_PANIC == 1002, "1002");

/* ---- context ---- */
_Static_assert(offsetof(XtConnectionInfo, remote_address) < offsetof(XtConnectionInfo, remote_port), "order");
_Static_assert(offsetof(XtConnectionInfo, remote_port) < offsetof(XtConnectionInfo, peer_port), "order");
_Static_assert(offsetof(XtConnectionInfo, peer_port) < offsetof(XtConnectionInfo, name), "order");
_Static_assert(offsetof(XtConnectionInfo, name) < offsetof(XtConnectionInfo, mac_address), "order");
_Static_assert(offsetof(XtConnectionInfo, mac_address) < offsetof(XtConnectionInfo, unique_id), "order");
_Static_assert(offsetof(XtConnectionInfo, unique_id) < offsetof(XtConnectionInfo, server_id), "order");
_Static_assert(offsetof(XtConnectionInfo, server_id) < offsetof(XtConnectionInfo, error_number), "order");
_Static_assert(offsetof(XtConnectionInfo, error_number) < offsetof(XtConnectionInfo, error_message), "order");
static void field_types(const XtConnectionInfo *i, const XtDatagramInfo *d) {
    const char *s;
    uint16_t p;
    uint32_t u;
    int32_t e;
    s = i->remote_address; p = i->remote_port; p = i->peer_port; s = i->name; s = i->mac_address;
    s = i->unique_id; u = i->server_id; e = i->error_number; s = i->error_message;
    s = d->remote_address; p = d->remote_port; p = d->local_port; s = d->name; s = d->mac_address;
    (void)s; (void)p; (void)u; (void)e;
}
_Static_assert(XT_DISPATCH_THREAD == 0 && XT_DISPATCH_POLL == 1, "XtDispatch");

static void table(const XtCallbacks *given) {
    XtCallbacks cb = *given;
    uint32_t size = cb.struct_size;
    void *ud = cb.user_data;
    void (*release)(void *) = cb.release;
    bool (*new_connection)(void *, uint64_t, const XtConnectionInfo *) = cb.new_connection;
    void (*connected)(void *, uint64_t, const XtConnectionInfo *) = cb.connected;
    void (*data_available)(void *, const uint8_t *, size_t, uint64_t, const XtConnectionInfo *) = cb.data_available;
    void (*socket_error)(void *, uint64_t, const XtConnectionInfo *) = cb.socket_error;
    void (*received_datagram)(void *, uint32_t, const uint8_t *, size_t, const XtDatagramInfo *) = cb.received_datagram;
    void (*page_request)(void *, uint32_t, const XtHttpRequest *, XtHttpResponse *) = cb.page_request;
    void (*log)(void *, int32_t, const char *) = cb.log;
    (void)size; (void)ud; (void)release; (void)new_connection; (void)connected; (void)data_available;
    (void)socket_error; (void)received_datagram; (void)page_request; (void)log;
}
_Static_assert(offsetof(XtCallbacks, struct_size) == 0, "struct_size first");
_Static_assert(offsetof(XtCallbacks, user_data) < offsetof(XtCallbacks, release), "order");
_Static_assert(offsetof(XtCallbacks, release) < offsetof(XtCallbacks, new_connection), "order");
_Static_assert(offsetof(XtCallbacks, new_connection) < offsetof(XtCallbacks, connected), "order");
_Static_assert(offsetof(XtCallbacks, connected) < offsetof(XtCallbacks, data_available), "order");
_Static_assert(offsetof(XtCallbacks, data_available) < offsetof(XtCallbacks, socket_error), "order");
_Static_assert(offsetof(XtCallbacks, socket_error) < offsetof(XtCallbacks, received_datagram), "order");
_Static_assert(offsetof(XtCallbacks, received_datagram) < offsetof(XtCallbacks, page_request), "order");
_Static_assert(offsetof(XtCallbacks, page_request) < offsetof(XtCallbacks, log), "order");

XtContext *(*const p_context_new)(const XtCallbacks *, uint32_t) = xt_context_new;
void (*const p_context_free)(XtContext *) = xt_context_free;
int32_t (*const p_poll)(XtContext *, int32_t) = xt_poll;
int32_t (*const p_wakeup_fd)(const XtContext *) = xt_wakeup_fd;

/* ---- options ---- */
_Static_assert(XT_OPT_MAX_MESSAGE_LEN == 1 && XT_OPT_WRITE_QUEUE_LIMIT == 2, "opt");
_Static_assert(XT_OPT_ALLOW_PRIVILEGED_PORTS == 3 && XT_OPT_LISTEN_BACKLOG == 4, "opt");
_Static_assert(XT_OPT_IDLE_TIMEOUT_MS == 5 && XT_OPT_CONNECT_TIMEOUT_MS == 6, "opt");
_Static_assert(XT_OPT_HTTP_MAX_HEADER_BYTES == 7 && XT_OPT_HTTP_MAX_BODY_BYTES == 8, "opt");
_Static_assert(XT_OPT_HTTP_REQUEST_TIMEOUT_MS == 9 && XT_OPT_PEER_LOOKUP_MS == 10, "opt");
int32_t (*const p_set_option)(XtContext *, uint32_t, int64_t) = xt_set_option;
int64_t (*const p_get_option)(const XtContext *, uint32_t) = xt_get_option;
int32_t (*const p_set_bind_address)(XtContext *, const char *) = xt_set_bind_address;

/* ---- TCP ---- */
uint32_t (*const p_start_tcp)(XtContext *, uint16_t, const uint8_t *, size_t) = xt_start_tcp_listener;
bool (*const p_stop_tcp)(XtContext *, uint32_t) = xt_stop_tcp_listener;
uint16_t (*const p_listener_port)(XtContext *, uint32_t) = xt_listener_port;
uint64_t (*const p_open_tcp)(XtContext *, const char *, uint16_t, const uint8_t *, size_t) = xt_open_tcp_connection;
int32_t (*const p_send_data)(XtContext *, uint64_t, const uint8_t *, size_t) = xt_send_data;
int32_t (*const p_disconnect)(XtContext *, uint64_t) = xt_disconnect;

/* ---- UDP ---- */
static const char broadcast[] = XT_BROADCAST_ADDRESS;
_Static_assert(sizeof broadcast == sizeof "255.255.255.255", "XT_BROADCAST_ADDRESS");
uint32_t (*const p_start_udp)(XtContext *, uint16_t) = xt_start_udp_listener;
bool (*const p_stop_udp)(XtContext *, uint32_t) = xt_stop_udp_listener;
bool (*const p_join)(XtContext *, uint32_t, const char *) = xt_join_multicast_group;
bool (*const p_leave)(XtContext *, uint32_t, const char *) = xt_leave_multicast_group;
int32_t (*const p_send_datagram)(XtContext *, uint32_t, const char *, uint16_t, const uint8_t *, size_t) = xt_send_datagram;

/* ---- HTTP ---- */
uint32_t (*const p_start_html)(XtContext *, uint16_t) = xt_start_html_listener;
bool (*const p_stop_html)(XtContext *, uint32_t) = xt_stop_html_listener;
const char *(*const p_req_method)(const XtHttpRequest *) = xt_http_request_method;
const char *(*const p_req_path)(const XtHttpRequest *) = xt_http_request_path;
const char *(*const p_req_query)(const XtHttpRequest *) = xt_http_request_query;
const char *(*const p_req_header)(const XtHttpRequest *, const char *) = xt_http_request_header;
size_t (*const p_req_header_count)(const XtHttpRequest *) = xt_http_request_header_count;
bool (*const p_req_header_at)(const XtHttpRequest *, size_t, const char **, const char **) = xt_http_request_header_at;
const uint8_t *(*const p_req_body)(const XtHttpRequest *, size_t *) = xt_http_request_body;
size_t (*const p_req_form_count)(const XtHttpRequest *) = xt_http_request_form_count;
bool (*const p_req_form_at)(const XtHttpRequest *, size_t, const char **, const char **) = xt_http_request_form_at;
const char *(*const p_req_form_value)(const XtHttpRequest *, const char *) = xt_http_request_form_value;
const XtConnectionInfo *(*const p_req_info)(const XtHttpRequest *) = xt_http_request_info;
int32_t (*const p_resp_status)(XtHttpResponse *, uint16_t) = xt_http_response_set_status;
int32_t (*const p_resp_header)(XtHttpResponse *, const char *, const char *) = xt_http_response_add_header;
int32_t (*const p_resp_body)(XtHttpResponse *, const uint8_t *, size_t) = xt_http_response_set_body;

/* ---- 64-bit layouts that hand-written bindings (bindings/xojo) rely on ---- */
#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(sizeof(XtCallbacks) == 88 && offsetof(XtCallbacks, user_data) == 8, "callbacks");
_Static_assert(offsetof(XtCallbacks, interface_changed) == 80, "callbacks");
_Static_assert(offsetof(XtCallbacks, new_connection) == 24 && offsetof(XtCallbacks, log) == 72, "callbacks");
_Static_assert(offsetof(XtCallbacks, data_available) == 40 && offsetof(XtCallbacks, page_request) == 64, "callbacks");
_Static_assert(sizeof(XtConnectionInfo) == 80 && offsetof(XtConnectionInfo, remote_port) == 8, "info");
_Static_assert(offsetof(XtConnectionInfo, message_kind) == 72, "info");
_Static_assert(offsetof(XtConnectionInfo, tls_peer_fingerprint) == 56 && offsetof(XtConnectionInfo, tls_protocol) == 64, "info");
_Static_assert(offsetof(XtConnectionInfo, peer_port) == 10 && offsetof(XtConnectionInfo, name) == 16, "info");
_Static_assert(offsetof(XtConnectionInfo, unique_id) == 32 && offsetof(XtConnectionInfo, server_id) == 40, "info");
_Static_assert(offsetof(XtConnectionInfo, error_number) == 44 && offsetof(XtConnectionInfo, error_message) == 48, "info");
_Static_assert(sizeof(XtDatagramInfo) == 56 && offsetof(XtDatagramInfo, local_port) == 10, "datagram");
_Static_assert(offsetof(XtDatagramInfo, local_address) == 32 && offsetof(XtDatagramInfo, interface_name) == 40, "datagram");
_Static_assert(offsetof(XtDatagramInfo, interface_index) == 48 && offsetof(XtDatagramInfo, kind) == 52, "datagram");
_Static_assert(offsetof(XtDatagramInfo, name) == 16 && offsetof(XtDatagramInfo, mac_address) == 24, "datagram");
#endif

int main(void) {
    (void)broadcast;
    static const XtConnectionInfo info;
    static const XtDatagramInfo datagram;
    static const XtCallbacks callbacks;
    field_types(&info, &datagram);
    table(&callbacks);
    return 0;
}

/* ---- the C contract, part 2 ---- */
_Static_assert(XT_ERR_TLS_HANDSHAKE == 1010 && XT_ERR_TLS_UNTRUSTED == 1011 && XT_ERR_TIMEOUT == 1012, "tls codes");
_Static_assert(XT_TRUST_SYSTEM == 0 && XT_TRUST_CA_FILE == 1 && XT_TRUST_PIN == 2 && XT_TRUST_ANY == 3, "trust");
_Static_assert(offsetof(XtConnectionInfo, error_message) < offsetof(XtConnectionInfo, tls_peer_fingerprint), "order");
_Static_assert(offsetof(XtConnectionInfo, tls_peer_fingerprint) < offsetof(XtConnectionInfo, tls_protocol), "order");
_Static_assert(offsetof(XtTlsOptions, struct_size) == 0, "tls options");
_Static_assert(offsetof(XtTlsOptions, trust) < offsetof(XtTlsOptions, ca_file), "order");
_Static_assert(offsetof(XtTlsOptions, ca_file) < offsetof(XtTlsOptions, pin_sha256), "order");
_Static_assert(offsetof(XtTlsOptions, pin_sha256) < offsetof(XtTlsOptions, server_name), "order");
_Static_assert(offsetof(XtTlsOptions, server_name) < offsetof(XtTlsOptions, cert_file), "order");
_Static_assert(offsetof(XtTlsOptions, cert_file) < offsetof(XtTlsOptions, key_file), "order");
uint64_t (*const p_open_tls)(XtContext *, const char *, uint16_t, const uint8_t *, size_t, const XtTlsOptions *) = xt_open_tls_connection;
int32_t (*const p_debug_panic_connection)(XtContext *, uint64_t) = xt_debug_panic_connection;
uint64_t (*const p_http_response_defer)(XtHttpResponse *) = xt_http_response_defer;
int32_t (*const p_http_reply)(XtContext *, uint64_t, uint16_t, const char *, const uint8_t *, size_t) = xt_http_reply;
_Static_assert(XT_OPT_HTTP_DEFER_TIMEOUT_MS == 11, "11");
uint32_t (*const p_start_tls)(XtContext *, uint16_t, const uint8_t *, size_t, const XtTlsOptions *) = xt_start_tls_listener;
const char *(*const p_listener_fp)(XtContext *, uint32_t) = xt_listener_fingerprint;

/* WebSocket and HTTPS (part 2) */
_Static_assert(XT_WS_TEXT == 1 && XT_WS_BINARY == 2 && XT_OPT_WS_MAX_MESSAGE_BYTES == 14, "websocket");
_Static_assert(offsetof(XtConnectionInfo, tls_protocol) < offsetof(XtConnectionInfo, message_kind), "order");
uint32_t (*const p_start_https)(XtContext *, uint16_t, const XtTlsOptions *) = xt_start_https_listener;
uint64_t (*const p_accept_ws)(XtHttpResponse *, const char *) = xt_http_response_accept_websocket;
uint64_t (*const p_open_ws)(XtContext *, const char *, const XtTlsOptions *) = xt_open_websocket;
int32_t (*const p_send_ws)(XtContext *, uint64_t, const uint8_t *, size_t, uint32_t) = xt_send_websocket;
uint32_t xt_contract_message_kind(const XtConnectionInfo *i);
uint32_t xt_contract_message_kind(const XtConnectionInfo *i) { return i->message_kind; }

/* LAN: arrival, replies from an interface, local address, Wake-on-LAN (part 2) */
_Static_assert(XT_DGRAM_UNICAST == 1 && XT_DGRAM_BROADCAST == 2 && XT_DGRAM_MULTICAST == 3, "datagram kinds");
_Static_assert(offsetof(XtDatagramInfo, mac_address) < offsetof(XtDatagramInfo, local_address), "order");
_Static_assert(offsetof(XtDatagramInfo, local_address) < offsetof(XtDatagramInfo, interface_name), "order");
_Static_assert(offsetof(XtDatagramInfo, interface_name) < offsetof(XtDatagramInfo, interface_index), "order");
_Static_assert(offsetof(XtDatagramInfo, interface_index) < offsetof(XtDatagramInfo, kind), "order");
int32_t (*const p_send_on)(XtContext *, uint32_t, const char *, const char *, uint16_t, const uint8_t *, size_t) = xt_send_datagram_on;
int32_t (*const p_local_for)(XtContext *, const char *, char *, size_t) = xt_local_address_for;
int32_t (*const p_wol)(XtContext *, const char *, const char *) = xt_send_wake_on_lan;
uint32_t xt_contract_datagram_kind(const XtDatagramInfo *d);
uint32_t xt_contract_datagram_kind(const XtDatagramInfo *d) { return d->kind + d->interface_index; }
_Static_assert(XT_OPT_MULTICAST_REFRESH_MS == 12, "refresh");
_Static_assert(offsetof(XtCallbacks, log) < offsetof(XtCallbacks, interface_changed), "order");
void (*xt_contract_interface_changed(const XtCallbacks *c))(void *, const char *, const char *, bool);
void (*xt_contract_interface_changed(const XtCallbacks *c))(void *, const char *, const char *, bool) { return c->interface_changed; }
/* Framing modes (part 2) */
_Static_assert(XT_FRAME_RAW == 0 && XT_FRAME_BOUNDARY == 1 && XT_FRAME_LENGTH == 2, "framing");
int32_t (*const p_set_framing)(XtContext *, uint64_t, uint32_t, const uint8_t *, size_t, uint32_t, uint32_t) = xt_set_framing;
