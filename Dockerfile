# The image for users, in the style of the Prometheus exporters: the static
# binary of `make crossbuild` (.build/OS-ARCH/smtp_exporter) on Prometheus's
# busybox base. Build it with
#   make crossbuild
#   docker build --build-arg ARCH=amd64 -t smtp_exporter .
# Dockerfile.scratch builds the same layout FROM scratch, with no base image
# to pull; scripts/image.sh (make image) builds and checks that one offline.
ARG ARCH="amd64"
ARG OS="linux"
FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest
LABEL org.opencontainers.image.title="smtp_exporter" \
      org.opencontainers.image.description="Prometheus exporter for synthetic SMTP, mail delivery and mail domain monitoring" \
      org.opencontainers.image.source="https://github.com/smtp-exporter/smtp_exporter" \
      org.opencontainers.image.licenses="Apache-2.0"

ARG ARCH="amd64"
ARG OS="linux"
COPY .build/${OS}-${ARCH}/smtp_exporter /bin/smtp_exporter
COPY examples/smtp_exporter.yml         /etc/smtp_exporter/config.yml
# The placeholder secrets the example names by relative path; mount your
# own /etc/smtp_exporter (config and secrets) over them.
COPY examples/secrets                   /etc/smtp_exporter/secrets

EXPOSE     9799
# nobody, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER       65534:65534
WORKDIR    /etc/smtp_exporter
ENTRYPOINT [ "/bin/smtp_exporter" ]
CMD        [ "--config.file=/etc/smtp_exporter/config.yml" ]
