# xtnet: the two commands a fresh machine needs.
#   make demo   build the library and the C examples, run the echo server on port 9000
#   make test   everything CI runs: format, lint, unit/integration/C-example tests
# Other targets: examples (build the C examples), bench (the benchmark), header (refresh
# include/xtnet.h after changing the C surface), clean.

CARGO ?= cargo
DEMO_PORT ?= 9000

.PHONY: demo test examples bench header clean

demo:
	$(CARGO) build --release
	$(MAKE) -C c-examples XTNET_LIB=../target/release OUT=build/release
	@echo "Echo server on port $(DEMO_PORT): try  nc localhost $(DEMO_PORT)  (Ctrl-C stops it)"
	LD_LIBRARY_PATH=target/release ./c-examples/build/release/echo_server --port $(DEMO_PORT)

test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test

examples:
	$(CARGO) build
	$(MAKE) -C c-examples

bench:
	$(CARGO) bench --bench echo

header:
	XTNET_BLESS=1 $(CARGO) test --test header

clean:
	$(CARGO) clean
	$(MAKE) -C c-examples clean
