# syntax=docker/dockerfile:1
# The streamkpi worker image: `docker build -t streamkpi:local .`
# Used by docker-compose.yml (workers, topic init, generator) and deploy/kubernetes/.

# Pinned: a new Python patch release or Debian base is a deliberate bump, not a surprise.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Stage 1: build streamkpi's wheel. Setuptools and the sources stay in this stage.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamkpi ./streamkpi
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the runtime, the wheel and its dependencies only (all of them ship binary
# wheels for CPython 3.11 on Linux, so no compiler is needed here either).
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/streamkpi-*.whl

# A fixed numeric uid: Kubernetes' runAsNonRoot can only verify a numeric USER.
RUN groupadd --system --gid 10001 streamkpi \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/streamkpi \
       --create-home --shell /usr/sbin/nologin streamkpi
USER 10001:10001
WORKDIR /var/lib/streamkpi

# In a container the web server must listen on every interface, or nothing outside the
# container (Prometheus, the published port, the kubelet's probes) can reach /metrics.
ENV STREAMKPI_WEB_HOST=0.0.0.0 \
    STREAMKPI_WEB_PORT=6066 \
    STREAMKPI_DATA_DIR=/var/lib/streamkpi
EXPOSE 6066

# /healthz answers once the worker's web server is up. Python, since slim has no curl.
# Only the worker serves it: other commands (topics create, generate) disable the check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('STREAMKPI_WEB_PORT', '6066') + '/healthz', timeout=4)"]

ENTRYPOINT ["streamkpi"]
CMD ["worker"]
