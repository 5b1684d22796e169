/* A C host that makes xtnet panic twice — at the C boundary (xt_debug_trigger_panic) and inside
 * a connection's network task (xt_debug_panic_connection) — and reports what it saw on stdout.
 * Its stderr must stay empty: a library reports through its log callback, never by printing.
 * Run by tests/panics.rs with RUST_BACKTRACE=1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xtnet.h"

static _Atomic uint64_t accepted;
static _Atomic int final_code;

static bool on_new(void *ud, uint64_t id, const XtConnectionInfo *info) {
    (void)ud;
    (void)info;
    atomic_store(&accepted, id);
    return true;
}

static void on_error(void *ud, uint64_t id, const XtConnectionInfo *info) {
    (void)ud;
    printf("socket_error %llu %d %s\n", (unsigned long long)id, info->error_number,
           info->error_message);
    fflush(stdout);
    atomic_store(&final_code, info->error_number);
}

static void on_log(void *ud, int32_t level, const char *message) {
    (void)ud;
    printf("log %d %s\n", level, message);
    fflush(stdout);
}

static int wait_for(_Atomic uint64_t *v) {
    for (int i = 0; i < 500 && atomic_load(v) == 0; i++) usleep(10000);
    return atomic_load(v) != 0;
}

int main(void) {
    XtCallbacks cb = {.struct_size = sizeof cb, .new_connection = on_new,
                      .socket_error = on_error, .log = on_log};
    XtContext *ctx = xt_context_new(&cb, XT_DISPATCH_THREAD);
    if (!ctx) return 2;
    printf("trigger %d\n", xt_debug_trigger_panic());
    printf("last_error %d %s\n", xt_last_error(), xt_last_error_message());
    uint32_t server = xt_start_tcp_listener(ctx, 0, (const uint8_t *)"\n", 1);
    if (!server) return 3;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(xt_listener_port(ctx, server))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return 4;
    if (!wait_for(&accepted)) return 5;
    printf("debug_panic %d\n", xt_debug_panic_connection(ctx, atomic_load(&accepted)));
    for (int i = 0; i < 500 && atomic_load(&final_code) == 0; i++) usleep(10000);
    xt_context_free(ctx);
    close(s);
    printf("done\n");
    return 0;
}
