# HTQ developer interface. `make help` lists the targets; CI runs `make test`.
SHELL := bash
.DEFAULT_GOAL := help

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/htq/htq/internal/buildinfo.Version=$(VERSION)
ROLES     := api scheduler dispatcher
BINARIES  := $(addprefix bin/htq-,$(ROLES)) bin/htq
GOFILES   := $(shell find . -name '*.go' -not -path './.tools/*' -not -path './tmp/*')
FUZZTIME  ?= 5s

include hack/tools/tools.mk
include hack/monitoring.mk
include hack/k8s.mk

.PHONY: help print-tools-dir build run test test-go test-system test-console chromium test-bench-harness check-format vet lint lint-golangci fuzz fuzz-short soak bench bench-quick redis clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*## "} {printf "  %-22s %s\n", $$1, $$2}'

build: $(BINARIES) ## build bin/htq-api, bin/htq-scheduler, bin/htq-dispatcher and the bin/htq CLI

bin/htq-%: $(GOFILES) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/$*

bin/htq: $(GOFILES) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/htq

run: build ## start Redis (unless HTQ_REDIS_URL is set) and the three roles locally
	scripts/run.sh

redis: ## install Debian's redis-server if it is missing
	scripts/ensure-redis.sh

chromium: ## install Debian's chromium if it is missing (the console's browser tests drive it)
	scripts/ensure-chromium.sh

test: ## everything CI checks: format, vet, lint, rules and dashboard, unit and integration tests with -race, system tests (real binaries, Redis, Prometheus; the console in a real Chromium), brief fuzzing, the Helm chart against a real kube-apiserver; ends with a summary of the stages (scripts/test.sh)
	MAKE='$(MAKE)' scripts/test.sh

print-tools-dir:
	@echo '$(TOOLS_DIR)'

test-go: ## unit and integration tests (each against its own redis-server), with the race detector
	$(GO) test -race -count=1 -timeout 20m ./cmd/... ./internal/... ./client/...

# The system tests run the real binaries and judge timing (a call that
# outlives its timeout is retried by design), so they run one at a time and
# without the race detector, which would slow the test's own target server
# several-fold; the binaries they start are ordinary builds anyway.
test-system: $(PROMTOOL) $(PROMETHEUS) chromium ## end-to-end, fault-injection and observability tests on real processes
	HTQ_PROMTOOL='$(PROMTOOL)' HTQ_PROMETHEUS='$(PROMETHEUS)' $(GO) test -count=1 -p 1 -parallel 1 -timeout 30m ./test/...

# test-system runs them too (./test/...); this runs only them.
test-console: chromium ## the console's browser tests alone (real Chromium, API, dispatcher, Redis; screenshots in tmp/ui-screenshots)
	$(GO) test -count=1 -p 1 -timeout 10m ./test/console/

# A count, not a duration: Go 1.26's fuzzer can fail a timed run at its end
# for no input (golang/go#75804); see scripts/fuzz.sh.
fuzz-short: ## run every fuzz target briefly, 10,000 inputs each (make fuzz runs them longer)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

FAULT_SOAK ?= 10m

soak: redis ## the long reliability runs: 1,000,000 tasks through the load test, the randomized fault test for FAULT_SOAK (10m) and again with AOF everysec, longer fuzzing
	HTQ_SOAK=1 $(GO) test -count=1 -timeout 60m -run 'TestLoad' -v ./test/fault/
	HTQ_FAULT_DURATION=$(FAULT_SOAK) $(GO) test -count=1 -timeout 60m -run 'TestRandomFaults' -v ./test/fault/
	HTQ_FAULT_DURATION=3m HTQ_FAULT_FSYNC=everysec $(GO) test -count=1 -timeout 30m -run 'TestRandomFaults' -v ./test/fault/
	@$(MAKE) --no-print-directory fuzz FUZZTIME=60s

test-bench-harness:
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...

check-format: ## fail if gofmt would change a file
	@out=$$(gofmt -l $(GOFILES)); if [[ -n $$out ]]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...

lint: check-format vet lint-golangci ## gofmt, go vet and golangci-lint (pinned; configured in .golangci.yml and bench/.golangci.yml)

lint-golangci: $(GOLANGCI_LINT) ## golangci-lint alone, on the three modules (make test runs format and vet as a stage of their own)
	$(GOLANGCI_LINT) run ./...
	cd bench && $(GOLANGCI_LINT) run ./...
	cd hack/chartcheck && $(GOLANGCI_LINT) run --config ../../.golangci.yml ./...

fuzz: redis ## run every fuzz target (FUZZTIME=5s each by default, or a count such as 5000x; crashers land in testdata/fuzz as regression cases)
	GO='$(GO)' scripts/fuzz.sh $(FUZZTIME)

bench: build ## the full benchmark, 3 runs each (table on stdout, results in bench/out/results.json)
	cd bench && $(GO) run . --bin-dir ../bin

bench-quick: build ## a short benchmark run (under 2 minutes)
	cd bench && $(GO) run . --quick --bin-dir ../bin

clean: ## remove build output and local run data
	rm -rf bin tmp
