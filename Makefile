SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

BUF_VERSION          := v1.75.0
PROTOVALIDATE_VERSION := v1.2.2
BUF      := go run github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
# gotestsum lists every test that ran, with its result and time.
GOTESTSUM := go run gotest.tools/gotestsum@v1.13.0
DATA_DIR ?= .jsm
LISTEN   ?= 127.0.0.1:8080
# Every module of the workspace, for tools that do not understand `work`.
MODULES  := libs proto services/audits services/changeadvisory services/contracts services/incidents services/integration services/patching services/reporting services/trail tools e2e

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: up
up: postgres ## run the whole platform locally (jsm up)
	go build -o bin/jsm ./tools/jsm
	./bin/jsm up --data-dir $(DATA_DIR) --listen $(LISTEN)

.PHONY: test
test: postgres generate-check lint ## run every test (real NATS, real PostgreSQL)
	$(GOTESTSUM) --format testname -- -count=1 -timeout 15m work

.PHONY: bench
bench: postgres ## run the benchmarks with the raw baselines side by side
	go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./services/contracts/bench/ ./services/patching/bench/ ./services/trail/bench/ ./services/integration/bench/ ./e2e/

.PHONY: e2e
e2e: postgres ## run the black-box scenarios against jsm up processes
	go test -count=1 -timeout 10m ./e2e/...

CLUSTER_DIR ?= .jsm-cluster

.PHONY: cluster-up
cluster-up: postgres ## run the production topology here: 3 NATS nodes, PostgreSQL, each service its own process
	go build -o bin/jsm ./tools/jsm
	./bin/jsm cluster up --data-dir $(CLUSTER_DIR)

.PHONY: cluster-down
cluster-down: ## stop what cluster-up started (data kept; PURGE=1 deletes it)
	go build -o bin/jsm ./tools/jsm
	./bin/jsm cluster down --data-dir $(CLUSTER_DIR) $(if $(PURGE),--purge)

.PHONY: cluster-status
cluster-status: ## show the processes of cluster-up and whether they are ready
	go build -o bin/jsm ./tools/jsm
	./bin/jsm cluster status --data-dir $(CLUSTER_DIR)

.PHONY: postgres
postgres: ## install PostgreSQL from Debian's packages when its binaries are missing
	@bash tools/scripts/ensure-postgres.sh

.PHONY: generate
generate: proto/third_party/buf/validate/validate.proto ## regenerate protobuf and Connect code under proto/gen
	cd proto && $(BUF) generate --path jsm

proto/third_party/buf/validate/validate.proto:
	@mkdir -p $(@D)
	@dir=$$(go mod download -json github.com/bufbuild/protovalidate@$(PROTOVALIDATE_VERSION) | sed -n 's/.*"Dir": "\(.*\)",/\1/p'); \
	  install -m 644 "$$dir/proto/protovalidate/buf/validate/validate.proto" $@

.PHONY: generate-check
generate-check: generate ## fail when the generated code differs from what is committed
	@git diff --exit-code -- proto/gen || { echo "generated code is stale: run make generate and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- proto/gen)" || { git status --porcelain -- proto/gen; echo "untracked generated files: run make generate and commit" >&2; exit 1; }

.PHONY: lint
lint: proto/third_party/buf/validate/validate.proto ## go vet, buf lint, buf format
	go vet work
	cd proto && $(BUF) lint && $(BUF) format -d --exit-code

BREAKING_BASE ?= main

.PHONY: breaking
breaking: proto/third_party/buf/validate/validate.proto ## check event and API schemas against main (BREAKING_BASE=<ref> for another)
	BUF='$(BUF)' bash tools/scripts/breaking.sh $(BREAKING_BASE)

.PHONY: clean
clean: ## remove build output (not the data dir)
	rm -rf bin
