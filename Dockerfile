# nauthera-operator's image: built with the workspace, run as a non-root static-ish binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p nauthera-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/nauthera-operator /usr/local/bin/nauthera-operator
USER nonroot
ENTRYPOINT ["/usr/local/bin/nauthera-operator"]
CMD ["run"]
