# egressguard — see README.md. Kernel tests and the demo need root.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/egressguard

.PHONY: build test test-unit test-kernel lint bench demo package rules-test clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/egressguard

# The whole suite: unit tests everywhere, kernel tests too when run as root
# (they create and remove their own network namespaces), the race detector
# on the concurrent packages.
test: build
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout 20m ./...

# Pure-logic tests only (no root needed); kernel tests skip themselves.
test-unit:
	$(GO) test -count=1 -short ./...

# As root the kernel tests run instead of skipping; refuse to pretend otherwise.
test-kernel: build
	@[ "$$(id -u)" = 0 ] || { echo "test-kernel: run as root (the kernel tests skip otherwise)"; exit 1; }
	$(GO) test -p 1 -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt:"; echo "$$out"; exit 1; }
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 20x ./shaper/

demo: build
	bash scripts/demo.sh

clean:
	rm -rf bin dist
