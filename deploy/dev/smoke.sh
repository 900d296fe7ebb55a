#!/usr/bin/env bash
# Smoke test of a running `make run` stack: sends one trace to OTLP/gRPC
# :4317 with telemetrygen and measures how long until the query API on :8080
# returns it. Usage: deploy/dev/smoke.sh [API_KEY]   (default: .data/dev-api-key)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
key="${1:-$(cat .data/dev-api-key)}"
api="${AFTERTRACE_API_URL:-http://127.0.0.1:8080}"
grpc="${AFTERTRACE_OTLP_GRPC:-127.0.0.1:4317}"
service="smoke-$(date +%s%N)"

go build -C loadtest/tools -o "$PWD/bin/telemetrygen" \
  github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen
bin/telemetrygen traces --otlp-insecure --otlp-endpoint "$grpc" \
  --otlp-header "Authorization=\"Bearer $key\"" \
  --traces 1 --child-spans 2 --rate 0 --service "$service" >/dev/null 2>&1
acked=$(date +%s%N)

for _ in $(seq 1 200); do
  out=$(curl -fsS -H "Authorization: Bearer $key" "$api/api/v1/traces?service=$service")
  if grep -q '"spanCount":3' <<<"$out"; then
    now=$(date +%s%N)
    id=$(sed -E 's/.*"traceId":"([0-9a-f]{32})".*/\1/' <<<"$out")
    echo "trace $id (3 spans) readable on $api $(( (now - acked) / 1000000 )) ms after the OTLP export was acknowledged"
    curl -fsS -H "Authorization: Bearer $key" "$api/api/v1/traces/$id" >/dev/null
    exit 0
  fi
  sleep 0.02
done
echo "trace not readable after 4 s" >&2
exit 1
