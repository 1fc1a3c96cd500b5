# syntax=docker/dockerfile:1.7
# routewarden's container image: the one static-enough binary on distroless, running as non-root.
#
#   docker build -t routewarden:dev .
#
# Build caching: BuildKit cache mounts keep the cargo registry and the target directory between
# builds, so a source change recompiles the workspace crates, not the dependencies. (Stub-source
# dependency layers do not fit this workspace: cargo needs every member's real targets to load it.)

FROM rust:1.92-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p routewarden \
    && install -D -m 0755 target/release/routewarden /out/routewarden

# glibc and libgcc, nothing else: no shell, no package manager. The `nonroot` tag's user is
# 65532, the uid deploy/base runs the pod as.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/routewarden /routewarden
USER 65532:65532
ENTRYPOINT ["/routewarden"]
CMD ["run"]
