# The fortisync controller image, for users with Docker, Podman, BuildKit or any OCI builder:
#
#   docker build --build-arg VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1) \
#     -t fortisync:<version> .
#
# The final image is the same layout scripts/image assembles without a daemon (and the tests
# run): the stripped binary at /usr/local/bin/fortisync, the four shared libraries it loads
# (glibc's loader, libc, libm, libgcc_s), nothing else — no shell, no package manager — run as
# the numeric user 65532:65532, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
# The controller is built without the simulator (`--no-default-features`).

# The toolchain the test suite runs with; any release from Cargo.toml's rust-version on works.
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# The OCI version label must be Cargo.toml's (the binary's --version); checked below.
ARG VERSION
WORKDIR /src
COPY . .
RUN test -n "$VERSION" || { echo "--build-arg VERSION=<Cargo.toml's version> is required" >&2; exit 1; }; \
    grep -qx "version = \"$VERSION\"" Cargo.toml || { echo "VERSION=$VERSION is not Cargo.toml's version" >&2; exit 1; }
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin fortisync \
    && scripts/image --binary target/release/fortisync --rootfs /rootfs

FROM scratch
ARG VERSION
LABEL org.opencontainers.image.title="fortisync" \
      org.opencontainers.image.description="Kubernetes controller that keeps Fortinet firewalls converged with custom resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/fortisync/fortisync"
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/fortisync"]
