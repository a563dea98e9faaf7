# syntax=docker/dockerfile:1
#
# HTQ's image: the three role binaries (static, CGO_ENABLED=0) on distroless
# static, running as nonroot (65532). No shell, no package manager.
#
#   /usr/local/bin/htq-api         the default entrypoint
#   /usr/local/bin/htq-scheduler
#   /usr/local/bin/htq-dispatcher
#
# Build (from the repository root; BuildKit, i.e. any recent Docker or buildx):
#
#   docker build -t ghcr.io/htq/htq:$(git describe --tags --always) \
#     --build-arg VERSION=$(git describe --tags --always --dirty) .
#
# Run a role other than the API by overriding the entrypoint (the Helm chart
# sets `command:` per role):
#
#   docker run --rm -p 5999:5999 -e HTQ_REDIS_URL=redis://host:6379/0 \
#     -e HTQ_API_TOKENS=change-me-0123456789 ghcr.io/htq/htq:TAG
#   docker run --rm --entrypoint /usr/local/bin/htq-dispatcher ghcr.io/htq/htq:TAG
#
# hack/chartcheck's tests check this file against the repository (stages,
# COPY sources, .dockerignore, the packages the binaries need).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY internal/ internal/
COPY client/ client/
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    for role in api scheduler dispatcher; do \
      go build -trimpath -ldflags "-s -w -X github.com/htq/htq/internal/buildinfo.Version=${VERSION}" \
        -o /out/htq-${role} ./cmd/${role} || exit 1; \
    done && \
    go build -trimpath -ldflags "-s -w -X github.com/htq/htq/internal/buildinfo.Version=${VERSION}" -o /out/htq ./cmd/htq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/htq-api /out/htq-scheduler /out/htq-dispatcher /out/htq /usr/local/bin/
USER 65532:65532
EXPOSE 5999
ENTRYPOINT ["/usr/local/bin/htq-api"]
