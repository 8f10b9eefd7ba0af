# site-controller — build, test, lint, run, install.
# The build tags are those the Podman bindings need; build, vet and test use
# them alike.
TAGS    := remote,exclude_graphdriver_btrfs,containers_image_openpgp
GO      ?= go
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test test-all lint run install bench scale coldstart clean

all: build

build:
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/site-controller ./cmd/site-controller

## test: every test, with the race detector (the README's test command).
## Packages run one at a time: routers of different data homes started at
## once (tests of two packages) could choose the same ports, which are
## reserved per data home.
test:
	$(GO) test -tags '$(TAGS)' -race -count=1 -p 1 ./...

## test-all: every test against real engines: installs (apt-get) and starts
## dockerd, a Podman API service and a systemd user manager (needs root)
test-all:
	scripts/with-engines.sh $(MAKE) test

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet -tags '$(TAGS)' ./...

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

clean:
	rm -rf bin
