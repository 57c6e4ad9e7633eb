# eventsource: build, set up local services, test.
#
#   make run    start Redis and MariaDB if needed, apply the schema, serve
#               (HTTP gateway for browsers on http://127.0.0.1:8080)
#   make test   what CI runs (.ci/run): services, npm deps, vet, race tests
#
# Go is looked up in /usr/local/go/bin first, so a PATH without it works.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := /usr/local/go/bin:$(PATH)

GO     ?= go
BIN    := bin/eventsource
COMPAT := test/compat

# Root runs apt-get directly, anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: all build services migrate run test test-deps cc node-deps browser-deps cluster-deps fmt vet clean soak

all: build

# -buildvcs=auto puts the commit in the version each server registers
# (`eventsource replicas`), whatever GOFLAGS says.
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/eventsource

services:
	bash scripts/services.sh

migrate: build services
	$(BIN) migrate

# The HTTP gateway listens on localhost only, so anonymous access is safe.
run: services migrate
	$(BIN) serve --http 127.0.0.1:8080 --anonymous

test: services test-deps
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...

test-deps: cc node-deps browser-deps cluster-deps

# The Redis Cluster tests (test/replicas) start a cluster of their own on
# free ports with redis-server and redis-cli, whatever Redis the rest uses.
cluster-deps:
	@if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then \
		echo "make: redis-server or redis-cli is missing and the cluster tests need them: installing Debian's redis-server"; \
		$(APT) update && $(APT) install -y redis-server redis-tools; \
	fi

# -race needs cgo, so a C compiler.
cc:
	@cc="$$($(GO) env CC)"; cc="$${cc%% *}"; \
	if ! command -v "$$cc" >/dev/null 2>&1; then \
		echo "make: no C compiler ($$cc) and go test -race needs one: installing gcc with apt-get"; \
		$(APT) update && $(APT) install -y gcc libc6-dev; \
	fi

# The compatibility test (test/compat) drives the server with the npm redis
# client, so it needs node, npm and its node_modules.
node-deps:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "make: node or npm is missing and the compat test needs them: installing Debian's nodejs npm"; \
		$(APT) update && $(APT) install -y nodejs npm; \
	fi
	@if [ -f $(COMPAT)/package-lock.json ]; then \
		echo "cd $(COMPAT) && npm ci"; \
		cd $(COMPAT) && npm ci --no-audit --no-fund; \
	else \
		echo "cd $(COMPAT) && npm install"; \
		cd $(COMPAT) && npm install --no-audit --no-fund; \
	fi

# The browser test (test/browser) opens the admin page in Debian's headless
# chromium; under CI it fails rather than skips without it.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "make: /usr/bin/chromium is missing and the browser test needs it: installing Debian's chromium"; \
		$(APT) update && $(APT) install -y chromium; \
	fi

# The bench harness (bench/): scenarios against an in-process server on a
# fresh database es_bench_<hex>, each beside its baseline measured in the same
# run. Streams are driven by the client package, as Go services use the
# server; wire-streams-1000 drives them with the wire driver, as lean as the
# ping-pong's client side, so that its ratio is the server's alone
# (BENCH_DRIVER=wire drives every scenario so). Pass more flags with
# BENCH_FLAGS, e.g. BENCH_FLAGS='--scenarios streams-1000'; see
# bin/eventsource bench -h.
BENCH_DRIVER ?= client
.PHONY: bench
bench: services build cluster-deps
	$(BIN) bench --driver $(BENCH_DRIVER) --report bench-report.html $(BENCH_FLAGS)

# The soak (soak/): a server of its own (own request channels, database,
# admin and HTTP ports, so `make run` may go on beside it) under a steady
# mix of fetch streams, persists, SSE readers and unaccepted streams for
# 10 minutes, with a fault every 30 s (Redis connections killed, a MariaDB
# connection killed, malformed requests). A report every minute; exits 1
# if an invariant broke or goroutines or heap grew without bound. Pass
# more flags with SOAK_FLAGS, e.g. SOAK_FLAGS='--duration 30m'; see
# bin/eventsource soak -h.
soak: services build
	$(BIN) soak $(SOAK_FLAGS)

fmt:
	$(GO) fmt ./...

vet:
	$(GO) vet ./...

clean:
	rm -rf bin/ $(COMPAT)/node_modules
	rm -f coverage.out coverage.html cover.out *.coverprofile
