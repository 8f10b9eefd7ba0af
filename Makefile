# site-controller — build, test, lint, run, install.
# The build tags are those the Podman bindings need; build, vet and test use
# them alike.
TAGS    := remote,exclude_graphdriver_btrfs,containers_image_openpgp
GO      ?= go
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test test-all lint run install bench scale coldstart fsfloor clean static dist docs image test-dist

# Release builds: static binaries (no cgo), paths trimmed, symbols
# stripped, under $(DIST)/build/linux-<arch>/.
DIST        ?= dist
DIST_ARCHES ?= amd64 arm64
HOST_ARCH   := $(shell $(GO) env GOARCH)
ARCH        ?= $(HOST_ARCH)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
STATIC_BIN   = $(DIST)/build/linux-$(1)/site-controller
# The controller's image (contrib/image/Containerfile), built with docker
# or podman (IMAGE_ENGINE; default docker when there is one) on the
# engine's default endpoint, or IMAGE_ENDPOINT (unix:///…).
IMAGE        ?= localhost/site-controller
IMAGE_ENGINE ?= $(if $(shell command -v docker),docker,podman)
IMAGE_ENDPOINT ?=
ENGINE_CLI   = $(IMAGE_ENGINE)$(if $(IMAGE_ENDPOINT), $(if $(filter podman,$(IMAGE_ENGINE)),--url,-H) $(IMAGE_ENDPOINT))

all: build

build:
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/site-controller ./cmd/site-controller

## test: every test, with the race detector (the README's test command).
## Packages run one at a time: routers of different data homes started at
## once (tests of two packages) could choose the same ports, which are
## reserved per data home.
test:
	$(GO) test -tags '$(TAGS)' -race -count=1 -p 1 ./...
	$(MAKE) --no-print-directory test-dist

## test-all: every test against real engines: installs (apt-get) and starts
## dockerd, a Podman API service and a systemd user manager (needs root)
test-all:
	scripts/with-engines.sh $(MAKE) test

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet -tags '$(TAGS)' ./...
	cd internal/dist && $(GO) vet ./...

## run: the daemon on the example namespaces (platform auto: none when no
## container engine or skrouterd is found)
run: build
	./bin/site-controller run --data-home examples

install: build
	install -D -m 0755 bin/site-controller $(DESTDIR)$(PREFIX)/bin/site-controller

bench:
	$(GO) test -tags '$(TAGS)' -run '^$$' -bench . -benchmem ./...

## scale: the render scale harness (one Site, 2500 Listeners, 2500 Connectors)
scale: build
	./internal/scale/render-harness.sh bin/site-controller

## coldstart: the daemon harness (100 namespaces x 100 resources: READY, RSS, inotify, idle CPU)
coldstart: build
	$(GO) run ./internal/scale/coldstart -bin bin/site-controller

## fsfloor: the file system's floor under `make scale` and `make coldstart` (FSFLOOR_DIR: a directory on it)
FSFLOOR_DIR ?= $(CURDIR)/.fsfloor
fsfloor:
	$(GO) run ./internal/scale/fsfloor -dir $(FSFLOOR_DIR) -mode render
	$(GO) run ./internal/scale/fsfloor -dir $(FSFLOOR_DIR) -mode coldstart -workers 4,16,64 -runs 3

## static: the static binary for ARCH (default: this machine's)
static:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS) -s -w' \
		-o $(call STATIC_BIN,$(ARCH)) ./cmd/site-controller

## docs: completions and man pages, from this machine's static binary
docs: static
	mkdir -p $(DIST)/build/docs/completions
	for sh in bash zsh fish; do \
		$(call STATIC_BIN,$(HOST_ARCH)) completion $$sh > $(DIST)/build/docs/completions/site-controller.$$sh || exit 1; \
	done
	mv $(DIST)/build/docs/completions/site-controller.zsh $(DIST)/build/docs/completions/_site-controller
	rm -rf $(DIST)/build/docs/man
	$(call STATIC_BIN,$(HOST_ARCH)) man --date $$(date -u -d @$(SOURCE_DATE_EPOCH) +%F) $(DIST)/build/docs/man

## dist: release artifacts under $(DIST)/: for each of DIST_ARCHES a
## .tar.gz and a .deb (internal/dist, with nfpm), and SHA256SUMS
dist: docs
	for a in $(DIST_ARCHES); do $(MAKE) --no-print-directory static ARCH=$$a || exit 1; done
	rm -f $(DIST)/*.tar.gz $(DIST)/*.deb $(DIST)/SHA256SUMS
	cd internal/dist && $(GO) run . -version '$(VERSION)' -root $(CURDIR) -build $(abspath $(DIST))/build \
		-docs $(abspath $(DIST))/build/docs -out $(abspath $(DIST)) -arch $$(echo $(DIST_ARCHES) | tr ' ' ,) \
		-source-date-epoch $(SOURCE_DATE_EPOCH)

## test-dist: the packaging's own tests (a .deb installed into and
## removed from a scratch dpkg root)
test-dist:
	cd internal/dist && $(GO) test -count=1 ./...

## image: the controller's image $(IMAGE):$(VERSION) (and :latest), FROM
## scratch with this machine's static binary: nothing is pulled
image: static
	$(ENGINE_CLI) build -f contrib/image/Containerfile --build-arg VERSION='$(VERSION)' $(if $(filter podman,$(IMAGE_ENGINE)),--layers=false) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest $(DIST)/build/linux-$(ARCH)

clean:
	rm -rf bin $(DIST)
