# egressguard — see README.md. Kernel tests and the demo need root.
# sudo's secure_path drops the Go toolchain's directory, and a user's PATH
# (which the sudo re-run below keeps, for their Go) has no sbin, where ip,
# tc, sysctl and nft live: keep both reachable, after what PATH already has.
export PATH := $(PATH):/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin
GO      ?= go
# The release the DaemonSet's image tag names; VERSION is a semver the packages
# accept: the release, then the commit until there are tags.
RELEASE := 0.1.0
# Re-run through sudo in a user's clone, git would refuse the tree as another
# user's ("dubious ownership"): trust the one being built.
GIT     := git -c safe.directory=$(CURDIR)
VERSION ?= $(RELEASE)-$(shell $(GIT) rev-parse --short HEAD 2>/dev/null || echo dev)
IMAGE   ?= ghcr.io/egressguard/egressguard
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/egressguard
# The lint's staticcheck; `make tools` installs it into GOBIN (CI: /usr/local/bin).
STATICCHECK_VERSION := v0.8.2
# Packages with goroutines or locks (the agent's loop and servers, the
# webhook handler, the capture, the detector, the shaper, the CLI's signal
# handling, the lab's process reapers): their tests run again under the race
# detector (e2e drives binaries built apart, so -race would add nothing there).
RACE_PKGS := ./agent/... ./alerts/... ./cmd/... ./detect/... ./internal/... ./shaper/...

.PHONY: build test test-unit test-kernel lint tools bench demo package ci-package upgrade-test image image-check rules-test clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/egressguard
	@# Built as root for a sudo user (make demo, make test): give bin/ back.
	@if [ "$$(id -u)" = 0 ] && [ -n "$${SUDO_UID:-}" ]; then chown -R "$$SUDO_UID:$$SUDO_GID" $(dir $(BIN)); fi

# `make demo` and `make test` are the README's two commands. They need root
# (network namespaces, tc): as another user they re-run themselves through
# sudo when it is installed. As root they first install the Debian packages
# they need when missing (or print the apt-get line to run).
ifneq ($(shell id -u),0)
demo test:
	@command -v sudo >/dev/null 2>&1 || { \
		echo "make $@: needs root and sudo is not installed: run it as root"; \
		[ "$@" = test ] && echo "(make test-unit runs the tests that need no root)"; exit 1; }
	sudo env "PATH=$$PATH" $(MAKE) $@
else
# The whole suite: unit tests everywhere, kernel tests too (they create and
# remove their own network namespaces), the race detector on the concurrent
# packages (RACE_PKGS).
test:
	@scripts/deps.sh test
	$(MAKE) build
	$(GO) vet ./...
	$(go-test)

demo:
	@scripts/deps.sh demo
	$(MAKE) build
	bash scripts/demo.sh
endif

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
	@out=$$(gofmt -l $$($(GIT) ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt:"; echo "$$out"; exit 1; }
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

# The OCI image (FROM scratch, the static binary only) into
# dist/egressguard-image.tar, built by buildah without a daemon.
image:
	@scripts/deps.sh image
	IMAGE=$(IMAGE) packaging/image.sh $(VERSION) $(RELEASE)

# Runs the image with podman in a lab namespace: doctor, throttle, release (root).
image-check: image
	packaging/image-check.sh dist/egressguard-image.tar

# Installs the package built from PREVIOUS (a commit), edits its config, starts
# a throttle, upgrades to this tree's package and checks what survived (root).
# PREVIOUS: the newest tag, else the first landed release (623bdc1, whose
# throttle is a root HTB the clsact layout must release), else HEAD~1.
FIRST_RELEASE := 623bdc1
PREVIOUS ?= $(shell $(GIT) describe --tags --abbrev=0 2>/dev/null || \
	{ $(GIT) cat-file -e $(FIRST_RELEASE)^{commit} 2>/dev/null && echo $(FIRST_RELEASE); } || echo HEAD~1)
upgrade-test:
	packaging/upgrade-test.sh $(PREVIOUS)

clean:
	rm -rf bin dist
