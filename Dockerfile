# syntax=docker/dockerfile:1

# Aftertrace: one static binary, all roles (run | gateway | writer | api | migrate).
#   docker build -t aftertrace:dev .
#   docker run --rm aftertrace:dev --help

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-trimpath

# Dependencies first so they are cached independently of source changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -buildvcs=false -ldflags="-s -w" -o /out/aftertrace ./cmd/aftertrace

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aftertrace /aftertrace
USER nonroot:nonroot
# 4317 OTLP/gRPC, 4318 OTLP/HTTP, 8080 query API
EXPOSE 4317 4318 8080
ENTRYPOINT ["/aftertrace"]
