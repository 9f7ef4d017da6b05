# The two commands a new machine needs: `make run` and `make test`.
SHELL    := bash
GO       ?= go
BIN      := bin/invited
FUZZTIME ?= 30s
# Each fuzz target runs this long inside `make test` (a smoke run for CI).
FUZZSMOKE ?= 3s

.PHONY: all build run test vet staticcheck fmt-check unit fuzz-smoke fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/invited

# A working instance on loopback: SMTP 127.0.0.1:2525, HTTP 127.0.0.1:8080,
# data in ./data, outgoing mail as .eml files in ./data/outbox.
run: build
	./$(BIN) serve --auth-policy none

test: fmt-check vet staticcheck unit fuzz-smoke

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Fetched from the module proxy at a pinned version: nothing to install.
staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

unit:
	$(GO) test -race -shuffle=on -count=1 -timeout 15m ./...

# Every fuzz target, briefly (seconds each) so CI catches regressions.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSMOKE)

# Every fuzz target for FUZZTIME each (.ci/fuzz says which failures it
# runs again).
fuzz:
	@GO=$(GO) .ci/fuzz $(FUZZTIME)

# Go benchmarks of the hot paths, then the daemon under load against the
# machine's own ceilings (cmd/invited-bench; a few minutes; BENCHFLAGS=-quick
# for a short run). Figures go to bench.json too.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/invited-bench -out bench.json $(BENCHFLAGS)

clean:
	rm -rf bin
