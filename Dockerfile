# nauthera-operator's image: built with the workspace, run as a non-root static-ish binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p nauthera-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/nauthera-operator /usr/local/bin/nauthera-operator
# Numeric, so the kubelet can verify deploy/'s runAsNonRoot (a user name it cannot:
# CreateContainerConfigError). 65532 is distroless's nonroot.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/nauthera-operator"]
CMD ["run"]
