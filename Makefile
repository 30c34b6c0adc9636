# smtp_exporter build, test and release targets.
#
#   make build       the binary, with version information
#   make test        unit tests with the race detector (what CI and the README run)
#   make help        this list
#   make postfix-start  a private Postfix on 127.0.0.1 to try the exporter against (README's "Try it locally"; root)
#   make postfix-stop   stop it
#   make test-e2e    tests against real components: a private Postfix, the mail path of the delivery prober and the domain path of the domain prober (installs them if needed)
#   make test-mailpath  the delivery prober's real mail path, started and checked end to end
#   make test-domainpath  the domain prober's real DNSSEC zone, resolver, MX hosts and MTA-STS, started and checked
#   make lint        gofmt, go vet, staticcheck, and go.mod/go.sum tidy
#   make vulncheck   govulncheck against a pinned copy of the Go vulnerability database
#   make loadrun     the load run: the binary against 1,000 STARTTLS targets (LOADRUN_TARGETS, LOADRUN_BANNER=slow), CPU, RSS, lag and scrape cost; minutes, not in CI
#   make fuzz        short runs of every fuzzer (reply parser, classifier, AUTH redaction, config)
#   make tarball     release tarball for this machine through promu (.build/, then ./smtp_exporter-VERSION.OS-ARCH.tar.gz)
#   make crossbuild  static binaries for every platform of .promu.yml (linux amd64/arm64/armv7, darwin, windows) in .build/OS-ARCH/
#   make tarballs    release tarballs of the crossbuild and their sha256sums.txt in .tarballs/
#   make release-check  the tarballs' checksums and contents, and VERSION's CHANGELOG.md heading
#   make image       the container image built offline (buildah, Dockerfile.scratch) and run: --version, --config.check, /metrics
#   make systemd-verify  examples/systemd/ checked with systemd-analyze verify and security
#   make mixin       render the monitoring mixin (mixin/) to examples/alerts.yml and the dashboard
#   make mixin-check fail when the rendered files are not what mixin/ renders

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
GOFMT     ?= gofmt
BIN       := smtp_exporter
PKG       := github.com/smtp-exporter/smtp_exporter
BUILD_DIR := .build

STATICCHECK_VERSION ?= v0.8.2
PROMU_VERSION       ?= v0.20.0
PROMU               := $(CURDIR)/$(BUILD_DIR)/promu-$(PROMU_VERSION)/promu

# Same sources as promu uses, so `make build` and `make promu-build` binaries
# report the same thing. `--verify -q` because a repository without commits
# would otherwise print "HEAD" as the revision.
VERSION    ?= $(shell cat VERSION 2>/dev/null || git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)
REVISION   ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
BRANCH     ?= $(shell git symbolic-ref -q --short HEAD 2>/dev/null || echo unknown)
BUILD_USER ?= $(shell id -un)@$(shell uname -n)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)

VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := \
	-X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(BUILD_USER) \
	-X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

# Where the e2e Postfix lives. Empty means: .e2e/ in the repository when the
# postfix and nobody users can reach it, else a fixed directory under /tmp
# (a clone inside a 0700 home directory cannot host the Maildir or sasldb).
E2E_DIR ?=
# Which tests `make test-e2e` runs; the e2e tests are named TestE2E_*.
E2E_RUN ?= E2E

FUZZTIME    ?= 20s
# Each fuzz target as package:name; every parser of untrusted input has one.
FUZZ_TARGETS ?= ./probes/smtp:FuzzReadReply ./probes/smtp:FuzzClassify \
	./probes/smtp:FuzzAuthReplies ./collector/config:FuzzParse \
	./probes/delivery:FuzzParseBounce ./probes/delivery:FuzzAuthResults \
	./probes/domain:FuzzMTASTSPolicy ./probes/domain:FuzzSPFRecord \
	./probes/domain:FuzzDMARCRecord ./probes/domain:FuzzDKIMKey \
	./probes/domain:FuzzTLSRPTRecord ./probes/domain:FuzzDNSAnswer \
	./probes/domain:FuzzUnescapeTXT

# gofmt walks directories itself; listing files keeps it out of the e2e
# instance, build output and testdata (which may hold broken Go on purpose).
# With no files gofmt would read stdin, hence the $(if ...) guards below.
GOFILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path './.e2e/*' \
	-not -path './$(BUILD_DIR)/*' -not -path '*/testdata/*')

.PHONY: all
all: lint test build

.PHONY: build
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/smtp_exporter

.PHONY: test
test:
	$(GO) test -race ./...

.PHONY: cover
cover:
	$(GO) test -race -coverprofile=coverage.out ./...
	$(GO) tool cover -func=coverage.out | tail -n 1

# The trap stops Postfix, the mail path and the domain path however the
# tests end, so a failed run never leaves a daemon holding the ports for the
# next one. The domain path needs root (port 443), as CI runs; its address
# block follows SMTP_EXPORTER_DOMAINPATH_NET from the environment.
.PHONY: test-e2e
test-e2e:
	bash scripts/install-deps.sh
	@dir='$(E2E_DIR)'; \
	if [ -z "$$dir" ]; then \
		if runuser -u postfix -- test -x '$(CURDIR)' 2>/dev/null; then dir='$(CURDIR)/.e2e'; \
		else dir=/tmp/smtp_exporter-e2e; fi; \
	fi; \
	trap 'bash scripts/domainpath.sh stop "$$dir/dp"; bash scripts/mailpath.sh stop "$$dir/mp"; bash scripts/postfix.sh stop "$$dir"' EXIT; \
	trap 'exit 130' INT TERM; \
	bash scripts/postfix.sh start "$$dir"; \
	bash scripts/mailpath.sh start "$$dir/mp"; \
	bash scripts/domainpath.sh start "$$dir/dp"; \
	set -a; . "$$dir/env"; . "$$dir/mp/env"; . "$$dir/dp/env"; set +a; \
	echo "SMTP_EXPORTER_E2E=1 $(GO) test -race -count=1 -run '$(E2E_RUN)' ./..."; \
	SMTP_EXPORTER_E2E=1 $(GO) test -race -count=1 -run '$(E2E_RUN)' ./...

# The real mail path of the delivery prober (issue 9): DNS, DKIM signing and
# verification, SPF, DMARC, Dovecot with Junk filing, bounces. Started in a
# directory every user can traverse (its daemons drop privileges), checked
# end to end, and stopped however the check ends.
MAILPATH_DIR ?= /tmp/smtp_exporter-mailpath
.PHONY: test-mailpath
test-mailpath:
	$(call check-path,mailpath,$(MAILPATH_DIR)/mp)

# The real mail domains of the domain prober (issue 10): a DNSSEC-signed
# zone in NSD, Unbound validating it, Postfix MX hosts with TLSA-matched and
# rotated certificates, MTA-STS policies over HTTPS. Root only (port 443).
DOMAINPATH_DIR ?= /tmp/smtp_exporter-domainpath
.PHONY: test-domainpath
test-domainpath:
	$(call check-path,domainpath,$(DOMAINPATH_DIR)/dp)

# $(call check-path,NAME,DIR) starts scripts/NAME.sh in DIR (under a parent
# every user can traverse: the daemons drop privileges), runs
# scripts/NAME-check.sh on it, and stops it however the check ends.
define check-path
	bash scripts/install-deps.sh
	@mkdir -p '$(dir $(2))' && chmod 755 '$(dir $(2))'; \
	trap 'bash scripts/$(1).sh stop "$(2)"' EXIT; \
	trap 'exit 130' INT TERM; \
	bash scripts/$(1).sh start '$(2)'; \
	bash scripts/$(1)-check.sh '$(2)'
endef

# The private Postfix of README.md's "Try it locally", and for running e2e
# tests by hand:
#     make postfix-start && set -a && . .e2e/env && set +a
#     SMTP_EXPORTER_E2E=1 go test -run E2E ./probes
# It lives in .e2e, where examples/local.yml finds its CA. When the postfix
# user cannot reach the repository (a clone in a 0700 home directory), it
# lives in POSTFIX_FALLBACK_DIR instead, with .e2e a link to it, so that
# .e2e/env and .e2e/tls/ca.crt are where they always are.
POSTFIX_FALLBACK_DIR ?= /tmp/smtp_exporter-postfix
.PHONY: postfix-start postfix-stop
postfix-start:
	@dir='$(E2E_DIR)'; \
	if [ -z "$$dir" ]; then \
		dir='$(CURDIR)/.e2e'; \
		if ! runuser -u postfix -- test -x '$(CURDIR)' 2>/dev/null; then \
			if [ -d .e2e ] && [ ! -L .e2e ]; then bash scripts/postfix.sh stop .e2e >/dev/null; rm -rf .e2e; fi; \
			dir='$(POSTFIX_FALLBACK_DIR)'; \
			mkdir -p "$$dir" && chmod 755 "$$dir" && ln -sfn "$$dir" .e2e; \
		fi; \
	fi; \
	echo "bash scripts/postfix.sh start $$dir"; \
	bash scripts/postfix.sh start "$$dir"
postfix-stop:
	bash scripts/postfix.sh stop '$(or $(E2E_DIR),$(CURDIR)/.e2e)'

# The monitoring mixin: jsonnet in mixin/, evaluated with go-jsonnet (a Go
# module, so no other toolchain), rendered to the files the examples ship.
.PHONY: mixin mixin-check
mixin:
	$(GO) run ./mixin/cmd/render
mixin-check:
	$(GO) run ./mixin/cmd/render -check

# The targets of the list at the top of this file, with what each does.
.PHONY: help
help:
	@sed -n 's/^#   make /make /p' $(firstword $(MAKEFILE_LIST))

.PHONY: lint
lint:
	@unformatted="$$($(if $(GOFILES),$(GOFMT) -l $(GOFILES)))"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run 'make fmt'):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(MAKE) --no-print-directory tidy-check

# go mod tidy -diff exits non-zero and prints the change when go.mod or
# go.sum is not what the imports need.
.PHONY: tidy-check
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }

.PHONY: vulncheck
vulncheck:
	GO='$(GO)' bash scripts/govulncheck.sh ./...

.PHONY: fmt
fmt:
	@$(if $(GOFILES),$(GOFMT) -l -w $(GOFILES))

.PHONY: bench
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The load run of issue 11 (scripts/loadrun.sh describes it and its
# LOADRUN_* settings): about 3.5 minutes plus the build. Not part of CI.
LOADRUN_TARGETS ?= 1000
LOADRUN_BANNER  ?= normal
.PHONY: loadrun
loadrun:
	GO='$(GO)' bash scripts/loadrun.sh '$(LOADRUN_TARGETS)' '$(LOADRUN_BANNER)'

# go test -fuzz takes one target in one package per run, and passes quietly
# when the target does not exist, hence the -list check.
.PHONY: fuzz
fuzz:
	for spec in $(FUZZ_TARGETS); do \
		pkg="$${spec%%:*}"; target="$${spec#*:}"; \
		if ! $(GO) test -list "^$$target\$$" "$$pkg" | grep -x "$$target" >/dev/null; then \
			echo "fuzz: no $$target in $$pkg" >&2; exit 1; \
		fi; \
		GO=$(GO) bash scripts/fuzz-one.sh "$$pkg" "$$target" $(FUZZTIME) || exit 1; \
	done

# promu refuses `go install ...@version` through the module proxy, so it is
# built in a throw-away module; the project's go.mod stays free of it.
.PHONY: promu
promu: $(PROMU)
$(PROMU):
	tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	cd "$$tmp" && $(GO) mod init promu-install >/dev/null 2>&1 && \
	GOFLAGS= $(GO) get -tool github.com/prometheus/promu@$(PROMU_VERSION) && \
	GOFLAGS= GOBIN='$(dir $(PROMU))' $(GO) install tool

# promu needs a git repository with at least one commit. It names the
# tarball after the origin remote's URL, which differs per clone (CI, forks,
# none at all); pinning it through git's environment config keeps the name
# smtp_exporter-VERSION.OS-ARCH.tar.gz everywhere.
PROMU_RUN := GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
	GIT_CONFIG_VALUE_0=https://$(PKG).git $(PROMU)

.PHONY: promu-build
promu-build: promu
	$(PROMU_RUN) build --prefix $(BUILD_DIR)

# Tarballs are packed by scripts/release.sh, not `promu tarball`: promu
# copies directories whole, Go tests and the Kubernetes test schemas
# included. The file list is still .promu.yml's tarball.files.
RELEASE := GO='$(GO)' PROMU='$(PROMU)' GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
	GIT_CONFIG_VALUE_0=https://$(PKG).git bash scripts/release.sh

.PHONY: tarball
tarball: promu-build
	$(RELEASE) tarball

# `promu crossbuild` runs in Docker with an image CI cannot pull; the loop
# in scripts/release.sh runs `promu build` per platform instead, into the
# same .build/OS-ARCH/ directories.
.PHONY: crossbuild
crossbuild: promu
	$(RELEASE) crossbuild

.PHONY: tarballs
tarballs: crossbuild
	$(RELEASE) tarballs

.PHONY: release-check
release-check:
	bash scripts/release-check.sh .tarballs

# The image's binary is the crossbuild's for this machine's architecture,
# where Dockerfile expects it; buildah and chroot need root.
HOST_ARCH = $(shell $(GO) env GOARCH)
.PHONY: image
image: promu
	GOOS=linux GOARCH=$(HOST_ARCH) $(PROMU_RUN) build --prefix $(BUILD_DIR)/linux-$(HOST_ARCH)
	bash scripts/image.sh $(BUILD_DIR)/linux-$(HOST_ARCH)/smtp_exporter

.PHONY: systemd-verify
systemd-verify: build
	bash scripts/systemd-verify.sh ./$(BIN)

.PHONY: clean
clean:
	if [ -f .e2e/etc/main.cf ]; then bash scripts/postfix.sh stop .e2e; fi
	rm -rf $(BIN) $(BUILD_DIR) .release .tarballs .e2e coverage.out coverage.html *.tar.gz
