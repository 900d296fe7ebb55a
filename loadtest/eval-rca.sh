#!/usr/bin/env bash
# eval-rca: start a fresh private Aftertrace stack (own ports and data dir),
# replay a whole Nezha-layout dataset (its fault-free construct_data too),
# wait for the writer to catch up, run `aftertrace eval nezha`, stop the
# stack. The last line of the output is the AS@k summary.
#   loadtest/eval-rca.sh DATASET [BIN]
# SIGNALS=metric replays only the metric files (a metrics-only tenant);
# the default replays traces, logs and metrics. EVALFLAGS are added to
# `aftertrace eval nezha` (e.g. "--after 10m" for 10-minute windows).
set -euo pipefail
DATASET=${1:?usage: eval-rca.sh DATASET [BIN]}
BIN=${2:-bin/aftertrace}
P=${EVAL_PORT_BASE:-27}   # ports ${P}xxx: ClickHouse ${P}900/${P}123, Postgres ${P}432, NATS ${P}222, OTLP ${P}317/${P}318, API ${P}080
STACK=$(mktemp -d /tmp/aftertrace-eval-rca.XXXXXX)
KEY=atk_eval_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
API=http://127.0.0.1:${P}080
LOG=$STACK/stack.log
cleanup() {
  if [[ -n "${PID:-}" ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"; for _ in $(seq 1 60); do kill -0 "$PID" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -rf "$STACK"
}
trap cleanup EXIT
start=$(date +%s)
"$BIN" run --stack-dir "$STACK/data" --dev-api-key "$KEY" \
  --stack-clickhouse-port ${P}900 --stack-clickhouse-http-port ${P}123 --clickhouse-addr 127.0.0.1:${P}900 \
  --stack-postgres-port ${P}432 --nats-port ${P}222 --nats-store-dir "$STACK/nats" \
  --grpc-addr 127.0.0.1:${P}317 --http-addr 127.0.0.1:${P}318 --api-addr 127.0.0.1:${P}080 \
  --retention-enforce-interval 0 --ingest-max-age 87600h >"$LOG" 2>&1 &   # datasets keep their original (old) timestamps: accept them (ten years) and never expire them
PID=$!
for _ in $(seq 1 240); do curl -sf "$API/readyz" >/dev/null && break; kill -0 $PID || { cat "$LOG"; exit 1; }; sleep 0.5; done
curl -sf "$API/readyz" >/dev/null || { echo "stack not ready"; tail -20 "$LOG"; exit 1; }
echo "stack ready after $(( $(date +%s) - start ))s; replaying $DATASET"
SIGARGS=()
[[ -n "${SIGNALS:-}" ]] && SIGARGS=(--signals "$SIGNALS")
go run ./loadtest/cmd/replay --dir "$DATASET" "${SIGARGS[@]}" --otlp-endpoint 127.0.0.1:${P}317 --key "$KEY" \
  --no-progress --state "" 2>&1 | grep -v "skipping" || true
# wait until the stored span count stops growing
count() { clickhouse-client --port ${P}900 -d aftertrace -q "SELECT (SELECT count() FROM spans) + (SELECT count() FROM metric_points) + (SELECT count() FROM logs)"; }
prev=-1
for _ in $(seq 1 120); do n=$(count || echo 0); [[ "$n" == "$prev" && "$n" != 0 ]] && break; prev=$n; sleep 3; done
echo "replayed in $(( $(date +%s) - start ))s: $prev spans, points and log records stored"
"$BIN" eval nezha --dir "$DATASET" --api "$API" --key "$KEY" ${EVALFLAGS:-}
