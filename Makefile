# Aftertrace — developer entry points. `make run` and `make test` work on a
# fresh Debian machine with Go: missing servers are installed from Debian.

GO        ?= go
BIN       := bin/aftertrace
TELGEN    := $(CURDIR)/bin/telemetrygen
DATA      ?= .data
FUZZTIME  ?= 5s
TESTFLAGS ?=

.PHONY: run run-cluster test deps test-deps build telemetrygen vet unit fuzz clean-data bench bench-scale otelcol reliability deploy-check

## run: install missing servers, start ClickHouse + Postgres under $(DATA), run every service
run: deps build
	./$(BIN) run --stack-dir $(DATA)

## run-cluster: as run, on a cluster topology on this host: ClickHouse 2 shards × 2 replicas with ZooKeeper, three embedded NATS servers (R3 streams), under $(DATA)-cluster
run-cluster: deps test-deps build
	./$(BIN) run --stack-dir $(DATA)-cluster --stack-topology cluster

## test: vet, every test against real ClickHouse/Postgres/NATS, and a short fuzz pass
test: deps test-deps vet telemetrygen build deploy-check
	AFTERTRACE_TELEMETRYGEN=$(TELGEN) AFTERTRACE_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 15m -artifacts $(TESTFLAGS) ./...
	$(MAKE) fuzz

deps:
	bash deploy/dev/install-deps.sh

# test-deps: what the tests run besides make run's servers: Debian's
# zookeeper (replicated ClickHouse) and chromium (the console's browser
# tests).
test-deps:
	bash deploy/dev/install-deps.sh zookeeper chromium prometheus

build:
	$(GO) build -o $(BIN) ./cmd/aftertrace

## deploy-check: docker-compose config, helm lint and helm template of deploy/helm/aftertrace with every manifest validated against the pinned Kubernetes API types (helm v4 and kubecheck from loadtest/tools)
HELM      := $(CURDIR)/bin/helm
KUBECHECK := $(CURDIR)/bin/kubecheck
deploy-check:
	bash deploy/dev/install-deps.sh docker-compose
	docker-compose config -q
	$(GO) build -C loadtest/tools -o $(HELM) helm.sh/helm/v4/cmd/helm
	$(GO) build -C loadtest/tools -o $(KUBECHECK) ./cmd/kubecheck
	$(HELM) lint --strict deploy/helm/aftertrace
	$(HELM) template ci deploy/helm/aftertrace | $(KUBECHECK)
	$(HELM) template ci deploy/helm/aftertrace --set secret.create=true,secret.postgresDSN=postgres://ci,secret.adminAPIKey=k,serviceMonitor.enabled=true,migrateJob.enabled=false,podDisruptionBudget.enabled=false,clickhouse.cluster=aftertrace | $(KUBECHECK)

# telemetrygen is pinned in its own module so its dependencies don't constrain ours.
telemetrygen:
	$(GO) build -C loadtest/tools -o $(TELGEN) github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen

vet:
	$(GO) vet ./...

## fuzz: run every Fuzz target for $(FUZZTIME)
fuzz:
	bash deploy/dev/fuzz.sh $(FUZZTIME)

clean-data:
	rm -rf $(DATA)

## reliability: outages, crashes, overload, hostile input and hostile tenants on a fresh private stack (≤ 15 min); last line reliability: passed=N failed=M
RELIABILITYFLAGS ?=
reliability: deps build
	$(GO) run ./loadtest/cmd/reliability --aftertrace-bin $(BIN) $(RELIABILITYFLAGS)

## bench: ingest benchmark on a fresh private stack (≤ 10 min); last line is the summary
BENCHFLAGS ?=
TOPOLOGY   ?= single
bench: deps build telemetrygen otelcol
	$(GO) run ./loadtest/cmd/bench --topology $(TOPOLOGY) --aftertrace-bin $(BIN) --otelcol-bin $(OTELCOL) --telemetrygen-bin $(TELGEN) $(BENCHFLAGS)

## bench-console: the console's first meaningful paint in headless Chromium (incident page, 10,000-span trace)
bench-console: deps test-deps
	$(GO) test -run '^$$' -bench BenchmarkConsolePaint -benchtime 5x ./services/allinone

## otelcol: an OpenTelemetry Collector (builder and components v0.161.0: OTLP → batch → nop) for bench's comparison
OTELCOL := bin/otelcol-bench-build/otelcol-bench
otelcol: $(OTELCOL)
$(OTELCOL): loadtest/otelcol/builder-config.yaml
	@mkdir -p bin
	sed 's#OUTPUT_PATH#$(CURDIR)/bin/otelcol-bench-build#' $< > bin/otelcol-builder.yaml
	$(GO) run go.opentelemetry.io/collector/cmd/builder@v0.161.0 --config bin/otelcol-builder.yaml

## bench-scale: load SPANS spans with raw inserts, then time trace-by-id, search and container timeline
SPANS ?= 50000000
bench-scale: deps
	$(GO) run ./loadtest/cmd/bench --scale --spans $(SPANS) $(BENCHFLAGS)

## replay: send a Nezha-layout dataset through OTLP (REPLAYFLAGS e.g. --only-windows --rate 20000 --resume)
.PHONY: replay
DATASET     ?= ../shared/datasets/nezha-ob-2022-08-22
REPLAYFLAGS ?=
replay:
	$(GO) run ./loadtest/cmd/replay --dir $(DATASET) $(REPLAYFLAGS)

## eval-rca: fresh private stack, replay DATASET, `aftertrace eval nezha`, stop (last line AS@1/3/5; SIGNALS=metric: metrics only)
.PHONY: eval-rca eval-rca-all
eval-rca: deps build
	bash loadtest/eval-rca.sh $(DATASET) $(BIN)

## eval-rca-all: eval-rca on every development set, with all signals and metrics only
RCA_DEV_SETS ?= ../shared/datasets/nezha-ob-2022-08-22 ../shared/datasets/nezha-tt-2023-01-30 ../shared/datasets/nezha-tt-2023-01-29-am
eval-rca-all: deps build
	@for d in $(RCA_DEV_SETS); do for s in "" metric; do \
	  echo "== $$d $${s:-all signals}"; SIGNALS=$$s bash loadtest/eval-rca.sh $$d $(BIN) | tail -12; done; done
