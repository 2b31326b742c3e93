# The Maestro operator image: `maestro run` on a slim Python, as a non-root user.
# With Docker (or any builder), on the official Python image:
#   docker build -t ghcr.io/maestro-dev/maestro:0.1.0 .
# Pin the base by digest when publishing (docker buildx imagetools inspect python:3.11-slim-bookworm):
#   FROM python:3.11-slim-bookworm@sha256:<digest>
# Without a registry or a container daemon, `make image` builds this same file with buildah on a base made from
# Debian's packages (hack/image/image.py; docs/install.md#the-image).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Optional: the package index pip installs from (default: PyPI); not named PIP_* so that pip never reads it
# from the environment when it is empty. Only the build stage sees it.
ARG PACKAGE_INDEX_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# pip and setuptools leave the venv once it is installed (25 MB the operator never runs).
RUN python -m venv /opt/maestro \
 && /opt/maestro/bin/pip install ${PACKAGE_INDEX_URL:+--index-url "$PACKAGE_INDEX_URL"} . \
 && /opt/maestro/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/maestro /opt/maestro
ENV PATH=/opt/maestro/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# A numeric user, so that Kubernetes can verify runAsNonRoot; the chart runs it with a read-only root filesystem.
USER 10001:10001
# /metrics, /healthz and /readyz (`maestro run --metrics-port`).
EXPOSE 8080
ENTRYPOINT ["maestro"]
CMD ["run", "--all-namespaces", "--log-format=json"]
