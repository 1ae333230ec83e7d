# Signet's image: signet-operator and signet-sts, built in a Rust image and copied into a
# distroless one (no shell, no package manager), running as a non-root user.
#
#   docker build -t signet .
#   docker run --rm signet --help                      # the STS (the default entrypoint)
#   docker run --rm --entrypoint /usr/local/bin/signet-operator signet --help

# cargo-chef turns the workspace's manifests into a recipe, so the dependency layer below is
# rebuilt only when Cargo.toml or Cargo.lock change, not on every source change.
FROM lukemathwalker/cargo-chef:0.1.73-rust-1.95-slim-bookworm AS chef
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p signet-operator -p signet-sts
COPY . .
# The release build; scripts/check-dockerfile runs this exact line in CI.
RUN cargo build --release --locked -p signet-operator -p signet-sts

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/signet-operator /src/target/release/signet-sts /usr/local/bin/
# 65532 is distroless's `nonroot` user.
USER 65532:65532
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/signet-sts"]
