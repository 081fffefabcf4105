# A stand-in for prom/prometheus (no registry is reachable in the tests): Debian's prometheus on
# the local base image, run as compose.yaml runs the real one (its flags as the command).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o prometheus -g prometheus /prometheus
USER prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
