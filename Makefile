# egressguard — see README.md. Kernel tests and the demo need root.
# sudo's secure_path drops the Go toolchain's directory; keep it reachable.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
# A semver the packages accept: the release, then the commit until there are tags.
VERSION ?= 0.1.0-$(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/egressguard
# The lint's staticcheck; `make tools` installs it into GOBIN (CI: /usr/local/bin).
STATICCHECK_VERSION := v0.8.2
# Packages with goroutines or locks (the agent's loop and servers, the
# webhook handler, the capture, the detector, the shaper, the CLI's signal
# handling, the lab's process reapers): their tests run again under the race
# detector (e2e drives binaries built apart, so -race would add nothing there).
RACE_PKGS := ./agent/... ./alerts/... ./cmd/... ./detect/... ./internal/... ./shaper/...

.PHONY: build test test-unit test-kernel lint tools bench demo package ci-package rules-test clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/egressguard

# The whole suite: unit tests everywhere, kernel tests too when run as root
# (they create and remove their own network namespaces), the race detector
# on the concurrent packages (RACE_PKGS).
test: build
	$(GO) vet ./...
	$(go-test)

# Every package, then RACE_PKGS again with -race.
define go-test
	$(GO) test -p 1 -count=1 -timeout 20m ./...
	$(GO) test -race -p 1 -count=1 -timeout 20m $(RACE_PKGS)
endef

# Pure-logic tests only (no root needed); kernel tests skip themselves.
test-unit:
	$(GO) test -count=1 -short ./...

# As root the kernel tests run instead of skipping; refuse to pretend otherwise.
test-kernel: build
	@[ "$$(id -u)" = 0 ] || { echo "test-kernel: run as root (the kernel tests skip otherwise)"; exit 1; }
	$(go-test)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || { echo "lint: staticcheck is not on PATH: make tools installs $(STATICCHECK_VERSION)"; exit 1; }
	staticcheck ./...

tools:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Each benchmark reports a ratio against its baseline run in the same invocation.
bench:
	bash scripts/bench-shaper.sh
	bash scripts/bench-capture.sh

# The shipped rules: promtool check and unit tests, the example configs.
rules-test:
	promtool check rules rules/*.rules.yml
	promtool test rules rules/tests/*.yml
	amtool check-config rules/examples/alertmanager.yml
	$(GO) test -count=1 -run 'TestPromtool|TestAmtool|TestRealAlertmanager' ./rules/ ./alerts/

# deb and rpm into dist/ (nfpm, pinned).
package:
	packaging/build.sh $(VERSION)

# Build, install, verify, score and purge the deb; inspect the rpm (root).
ci-package:
	packaging/ci-check.sh $(VERSION)

demo: build
	bash scripts/demo.sh

clean:
	rm -rf bin dist
