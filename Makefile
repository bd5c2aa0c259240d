# nginx_upstream_exporter
GO        ?= go
BIN       ?= nginx_upstream_exporter
PKG       := github.com/prometheus/common/version
VERSION   ?= $(shell cat VERSION)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
LDFLAGS   := -X $(PKG).Version=$(VERSION) -X $(PKG).Revision=$(REVISION) -X $(PKG).Branch=$(BRANCH) -X $(PKG).BuildUser=make -X $(PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
GOTEST    ?= $(GO) test
EXAMPLE_ADDR ?= 127.0.0.1:10650

.PHONY: all build run-example test test-deps fmt-check vet unit mixin mixin-check bench bench-smoke bench-harness bench-tools bench-harness-smoke bench-scale alloc-budgets

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

# Runs the exporter on the bundled example: its upstreams point at loopback
# (one of them the exporter itself), so every verdict is real.
run-example: build
	./scripts/run-example.sh ./$(BIN) $(EXAMPLE_ADDR)

test: test-deps fmt-check vet mixin-check unit alloc-budgets bench-tools bench-harness-smoke bench-smoke

test-deps:
	./scripts/install-test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GOTEST) -race -count=1 -timeout 20m ./...

mixin:
	$(MAKE) -C mixin all

mixin-check:
	@if [ -f mixin/Makefile ]; then $(MAKE) -C mixin check; fi

# The bench harness is its own Go module (tools/bench), outside the
# exporter's import tree; ./... above does not reach it.
BENCH := tools/bench

# Go benchmarks of both modules run once each in CI so they cannot rot.
bench-smoke:
	$(GOTEST) -run '^$$' -bench . -benchtime=1x -count=1 ./...
	cd $(BENCH) && $(GOTEST) -run '^$$' -bench . -benchtime=1x -count=1 ./...

# Allocations per probe, per scrape of 10,000 targets and per load of
# 10,000 upstreams against tools/budgets/alloc-budgets.txt: fails naming
# the benchmark and its numbers. Counts, not timings, so CI noise cannot
# fail it. After an intended change: go run ./tools/budgets -write -count 5
# Then the live heap at 10,000 targets against its bounds, without -race
# (which skips them): per package, as serve holds it with every signal on,
# and as the model-to-renderer stages.
alloc-budgets:
	$(GO) run ./tools/budgets
	$(GOTEST) -count=1 -run 'Heap10k|Memory10kAllSignals|MemoryPerTarget|TargetSetMemory10k|TargetLoggersMemory10k|TLSSessionMemory' ./...
	cd $(BENCH) && $(GOTEST) -count=1 -run 'TestMemory10k' .

# Go benchmarks of the hot paths; compare two runs with benchstat.
bench:
	{ $(GOTEST) -run '^$$' -bench . -benchmem -count=6 ./... && \
	  cd $(BENCH) && $(GOTEST) -run '^$$' -bench . -benchmem -count=6 ./... ; } | tee bench.txt

# The harness module's vet and unit tests; -short leaves out the
# 10,000-upstream reload case, which bench-scale runs without -race.
bench-tools:
	cd $(BENCH) && $(GO) vet ./... && $(GOTEST) -race -count=1 -short ./...

bench-scale:
	cd $(BENCH) && $(GOTEST) -run 'TestReload10k' -count=1 -v .

# A few seconds of the harness on 40 targets: it builds, runs all three
# processes and reports; then again with every signal on (a running nginx,
# the error log, the status page), failing if one is not live.
bench-harness-smoke:
	cd $(BENCH) && $(GO) run ./cmd/harness -targets 40 -mix tcp,http,https,fastcgi -interval 1s -warmup 1s -duration 3s -scrapes 1
	cd $(BENCH) && $(GO) run ./cmd/harness -targets 40 -mix tcp,http,https,fastcgi -refuse 0.25 -hang 0.25 -timeout 1s -interval 1s -warmup 2s -duration 4s -scrapes 1 -signals all

# The scale harness of docs/performance.md: exporter and floor side by side
# on loopback target farms (about 35 minutes).
bench-harness:
	cd $(BENCH) && $(GO) run ./cmd/harness -suite standard -runs 3 -duration 60s -out $(CURDIR)/bench-results.md
