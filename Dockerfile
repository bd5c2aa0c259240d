# Standalone image: nothing but this file and the source tree is needed.
#
#   docker build --build-arg VERSION="$(cat VERSION)" --build-arg REVISION="$(git rev-parse HEAD)" \
#     -t nginx_upstream_exporter .
#   docker run --rm --network container:nginx -v /etc/nginx:/etc/nginx:ro \
#     -v /run/php:/run/php nginx_upstream_exporter
#
# The exporter reads nginx's configuration, so mount /etc/nginx read-only
# at the same path (include paths inside it are absolute), and share
# nginx's network namespace and socket directories: see
# docs/deployment.md. It needs no capabilities and runs as an
# unprivileged user; docs/deployment.md says what that user cannot check.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=docker
ARG BUILD_DATE=unknown
# The same -X flags as the Makefile's LDFLAGS, so --version, the start-up
# log and nginx_upstream_exporter_build_info agree.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION} -X github.com/prometheus/common/version.Branch=${BRANCH} -X github.com/prometheus/common/version.BuildUser=${BUILD_USER} -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /out/nginx_upstream_exporter .

# distroless/static has no shell and no package manager; its "nonroot"
# user is uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nginx_upstream_exporter /bin/nginx_upstream_exporter
USER 65532:65532
EXPOSE 10650
# Default command: serve on :10650 with --nginx.config=/etc/nginx/nginx.conf.
# `docker run … nginx_upstream_exporter diagnose` runs the one-shot check.
ENTRYPOINT ["/bin/nginx_upstream_exporter"]
