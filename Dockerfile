# syntax=docker/dockerfile:1
# pii-sensor image: `sniff` (DaemonSet, runs as root with NET_RAW/NET_ADMIN only) and
# `proxy` (sidecar, runs as the unprivileged user 10001). Base images pinned by version.

FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip==24.3.1 build==1.2.2
COPY pyproject.toml README.md ./
COPY sensor ./sensor
COPY detectors ./detectors
# wheels for the project and every dependency (spaCy's English pipeline included)
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.7-slim-bookworm
# tcpdump: scapy compiles --bpf filters with it; nothing else is needed at run time
RUN apt-get update \
 && apt-get install -y --no-install-recommends tcpdump=4.99.3-1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels pii-sensor \
 && rm -rf /wheels \
 && useradd --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin sensor
# mitmproxy keeps its CA in --confdir (the chart mounts an emptyDir at /tmp)
ENV HOME=/tmp PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8081 9102
ENTRYPOINT ["pii-sensor"]
CMD ["--help"]
