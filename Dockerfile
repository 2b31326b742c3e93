# The Maestro operator image: `maestro run` on a slim Python, as a non-root user.
# It is not built on the development machine (no container engine there); CI or a workstation with Docker builds it:
#   docker build -t ghcr.io/maestro-dev/maestro:0.1.0 .
# Pin the base by digest when publishing (docker buildx imagetools inspect python:3.11-slim-bookworm):
#   FROM python:3.11-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/maestro && /opt/maestro/bin/pip install .

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/maestro /opt/maestro
ENV PATH=/opt/maestro/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# A numeric user, so that Kubernetes can verify runAsNonRoot; the chart runs it with a read-only root filesystem.
USER 10001:10001
# /metrics, /healthz and /readyz (`maestro run --metrics-port`).
EXPOSE 8080
ENTRYPOINT ["maestro"]
CMD ["run", "--all-namespaces", "--log-format=json"]
