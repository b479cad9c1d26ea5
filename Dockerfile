# deploybot: one static binary on a distroless base, run as non-root.
#   docker build -t deploybot .
#   docker run --rm -e DEPLOYBOT_CONFIG=/etc/deploybot/deploybot.yaml \
#     -v $PWD/deploybot.yaml:/etc/deploybot/deploybot.yaml:ro deploybot serve
# cmd/deploybot/docker_test.go runs the build step below and checks that the
# binary it makes is static.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/deploybot ./cmd/deploybot

# distroless/static has CA certificates, /etc/passwd with "nonroot", and
# nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/deploybot /usr/local/bin/deploybot
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/deploybot"]
CMD ["serve"]
