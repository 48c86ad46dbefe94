# deflectd: a static build of ./cmd/deflectd on a distroless base (CA
# certificates for graph.facebook.com included; time zones are embedded in
# the binary). Build from the repository root:
#   docker build -f configs/docker/deflectd.Dockerfile -t deflectd .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/deflectd ./cmd/deflectd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/deflectd /usr/local/bin/deflectd
# The config directory (deflectd.yaml, rules.yaml, templates.yaml) is
# mounted here; secrets come from the environment or *_file settings.
WORKDIR /etc/deflectd
ENTRYPOINT ["/usr/local/bin/deflectd"]
CMD ["run", "-config", "/etc/deflectd/deflectd.yaml"]
