# Every developer task in one place. `make test` is what CI runs (.ci/run); `make demo` shows Maestro working.
# Both do all set-up themselves on a fresh machine: a virtualenv in .venv, and the local control plane's binaries
# built from their Go modules into ~/.cache/maestro (many minutes the first time, cached afterwards). `make test`
# also fetches Debian's lua5.1 into that cache for the Argo CD health check's tests (hack/lua.py).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLUSTER := $(BIN)/python hack/cluster/cluster.py
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup lint unit test faults demo demo-down cluster-up cluster-down crd manifests argocd image image-check image-import

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd benchmarks && MYPYPATH=../operator ../$(BIN)/mypy --ignore-missing-imports --follow-imports=silent *.py  # scripts, not a package
	$(BIN)/lint-imports
	cd hack/images && ! gofmt -l . | grep . && go vet ./...  # the sample service (docs/images.md); lists unformatted files

unit: setup
	$(BIN)/pytest tests/unit
	cd hack/images && go test ./...

# Lint, then every test: unit, the local cluster's lifecycle, and e2e against a real API server (the local control
# plane, started and stopped by the suite, or the cluster named by MAESTRO_TEST_KUBECONFIG).
test: lint
	$(CLUSTER) build
	$(BIN)/python hack/helm/helm.py build
	$(BIN)/python hack/lua.py build
	$(BIN)/python hack/images/images.py build
	cd hack/images && go test ./...
	$(BIN)/pytest

# The fault-injection suite at the issue's full counts (100 apps, 10 kills, 1000 fuzzed specs, ...); `make test`
# runs it at CI size. Figures go to .faults/figures.jsonl and the terminal summary. See docs/reliability.md.
faults: setup
	$(CLUSTER) build
	MAESTRO_FAULTS=full $(BIN)/pytest tests/faults

demo: setup
	$(BIN)/python hack/demo.py

demo-down: setup
	$(BIN)/python hack/demo.py --down

cluster-up: setup
	$(CLUSTER) up

cluster-down: setup
	$(CLUSTER) down

crd: setup
	$(BIN)/maestro crd > crds/maestro.dev_microserviceapps.yaml

# The chart's list of child kinds (its RBAC) from render/kinds.py, then deploy/manifests/: the Helm chart rendered
# with its defaults. Unit tests fail when either drifts.
manifests: setup
	$(BIN)/python hack/child_kinds.py
	$(BIN)/python hack/helm/helm.py manifests

# deploy/argocd/argocd-cm.yaml and argo-cd-values.yaml embed the Argo CD health check; a unit test fails on drift.
argocd: setup
	$(BIN)/python hack/argocd.py

# The operator image from the Dockerfile, without a registry or a container daemon: a Debian base made with
# debootstrap, the Dockerfile built on it with buildah, exported as a docker-archive into ~/.cache/maestro/image/
# (hack/image/image.py; cached: a second run with the same sources does nothing). Needs root. `image-check` runs it
# as the chart's pod would (user 10001, read-only root filesystem) in a private containerd.
image:
	$(PYTHON) hack/image/image.py build

image-check:
	$(PYTHON) hack/image/image.py check

# The image (built when missing) into the local cluster's real node, also as the chart's default name, so that
# `helm install deploy/helm/maestro` runs it there (docs/install.md, "On the local cluster"). MAESTRO_CLUSTER_NAME
# picks the cluster (default maestro).
image-import:
	$(PYTHON) hack/cluster/cluster.py import-image
