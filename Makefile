# xtnet: the two commands a fresh machine needs.
#   make demo   build the library and the C examples, run the demo host (xtdemo): TCP echo on
#               9000, UDP echo on 9001, status page on http://localhost:8080/
#   make test   everything CI runs: format, lint, unit/integration/C-example tests
# Other targets: check-macos (below), examples (build the C examples), bench (the benchmark), soak (a long verified
# run, RELIABILITY.md), fuzz (the fuzz targets, nightly), header (refresh include/xtnet.h after
# changing the C surface), install (below), clean.
#
#   make install PREFIX=/usr/local      shared library with SONAME libxtnet.so.0.1 and its
#                                        links, static library, header, module map, xtnet.pc
#   (DESTDIR=... for staging; PROFILE=debug for a debug build)

CARGO ?= cargo
DEMO_TCP_PORT ?= 9000
DEMO_UDP_PORT ?= 9001
DEMO_HTTP_PORT ?= 8080
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The ABI version: 0.MINOR while the major version is 0 (as cargo-c does).
ABI := $(word 1,$(subst ., ,$(VERSION))).$(word 2,$(subst ., ,$(VERSION)))
SONAME := libxtnet.so.$(ABI)
INSTALL_BUILD := target/install/$(if $(filter release,$(PROFILE)),release,debug)

.PHONY: demo test check-macos examples bench soak fuzz header install clean

demo:
	$(CARGO) build --release
	$(MAKE) -C c-examples XTNET_LIB=../target/release OUT=build/release
	LD_LIBRARY_PATH=target/release ./c-examples/build/release/xtdemo --tcp-port $(DEMO_TCP_PORT) \
	    --udp-port $(DEMO_UDP_PORT) --http-port $(DEMO_HTTP_PORT)

# The suites run again in the other dispatch modes (tests/common: XTNET_TEST_DISPATCH).
DISPATCH_SUITES := --test tcp_events --test tcp_data --test tcp_outgoing --test udp --test http \
    --test framing_modes --test websocket --test tls --test bad_input --test panics \
    --test context --test accept_errors --test peer_identity --test udp_lan

test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	# XTension embeds Python 3.7: the package may use nothing newer.
	vermin -t=3.7- --no-tips --violations python/xtnet
	cd python && python3 -m mypy xtnet
	$(CARGO) test
	XTNET_TEST_DISPATCH=inline $(CARGO) test $(DISPATCH_SUITES)
	XTNET_TEST_DISPATCH=poll $(CARGO) test $(DISPATCH_SUITES)
	# The platform paths macOS uses that also run here: the pipe wake fd, the periodic interface
	# look, the route lookup by interface list, one recvmsg/sendto per datagram.
	$(CARGO) test --features portable --lib --test context --test udp --test udp_lan \
	    --test peer_identity --test python
	$(MAKE) check-macos

# The library and the tests compiled for macOS (no SDK or linker here, so nothing is linked or
# run): every macOS-only path type-checks and passes clippy, and the constants that describe
# macOS's structures are checked against its headers. ring's C code needs three SDK headers,
# stood in for by tests/macos/include. Needs `rustup target add aarch64-apple-darwin`.
MACOS_TARGET := aarch64-apple-darwin
check-macos:
	CC_aarch64_apple_darwin=clang CFLAGS_aarch64_apple_darwin="-ffreestanding -I$(CURDIR)/tests/macos/include" \
	    $(CARGO) clippy --target $(MACOS_TARGET) --lib --tests -- -D warnings

examples:
	$(CARGO) build
	$(MAKE) -C c-examples

bench:
	$(CARGO) bench --bench echo

# Not in CI: a long run of verified traffic (RELIABILITY.md).
SOAK_SECONDS ?= 60
SOAK_CONNECTIONS ?= 4000
soak:
	$(CARGO) bench --bench soak -- --seconds $(SOAK_SECONDS) --connections $(SOAK_CONNECTIONS)

# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz); see fuzz/README.md.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := framer http_request c_arguments
fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	    mkdir -p corpus-run/$$t && cp corpus/$$t/* corpus-run/$$t/ && \
	    cargo +nightly fuzz run $$t corpus-run/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

header:
	XTNET_BLESS=1 $(CARGO) test --test header

# A build of its own (target/install), with the SONAME set; then the files.
install:
	XTNET_SONAME=$(SONAME) $(CARGO) build --lib $(if $(filter release,$(PROFILE)),--release,) --target-dir target/install
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/xtnet
	install -m 755 $(INSTALL_BUILD)/libxtnet.so $(DESTDIR)$(LIBDIR)/libxtnet.so.$(VERSION)
	ln -sf libxtnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libxtnet.so
	install -m 644 $(INSTALL_BUILD)/libxtnet.a $(DESTDIR)$(LIBDIR)/libxtnet.a
	install -m 644 include/xtnet.h $(DESTDIR)$(INCLUDEDIR)/xtnet.h
	sed 's|header "xtnet.h"|header "../xtnet.h"|' include/module.modulemap > $(DESTDIR)$(INCLUDEDIR)/xtnet/module.modulemap
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' packaging/xtnet.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/xtnet.pc
	@echo "installed xtnet $(VERSION) under $(DESTDIR)$(PREFIX) (SONAME $(SONAME))"

clean:
	$(CARGO) clean
	$(MAKE) -C c-examples clean
