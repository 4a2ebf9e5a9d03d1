# syntax=docker/dockerfile:1
# A small image of wid: one static (musl) binary on distroless's static base, which
# has no shell and no libc, CA certificates for the cloud APIs, and a non-root user.
#
#   docker build --build-arg WID_GIT_REVISION=$(git rev-parse --short HEAD) -t wid .
#   docker run --rm wid version
#
# CI jobs that need wid on the runner copy it out (see examples/gitops):
#   id=$(docker create wid) && docker cp "$id:/usr/local/bin/wid" . && docker rm "$id"

FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev gcc
WORKDIR /src
# The workspace: manifests first, then every member's sources (tests, docs and
# examples are not needed to build the binary).
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY providers ./providers
COPY sandbox ./sandbox
COPY audit ./audit
# No .git in the build context: the revision `wid version` prints comes from here.
ARG WID_GIT_REVISION=unknown
ENV WID_GIT_REVISION=${WID_GIT_REVISION}
RUN cargo build --release --locked --bin wid \
 && strip target/release/wid \
 && ./target/release/wid version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/release/wid /usr/local/bin/wid
USER nonroot
ENTRYPOINT ["/usr/local/bin/wid"]
CMD ["--help"]
