# LoopPhase on kind: make kind-up images kind-load deploy example; make e2e; make kind-down
# Prerequisites: docker or podman (images/build.sh picks docker when its daemon answers, else
# podman; DOCKER=... overrides; with podman, export KIND_EXPERIMENTAL_PROVIDER=podman for kind),
# kind, kubectl, python3 >= 3.11. Targets that run Python create ./.venv themselves
# (python3 dev.py setup); deploy and example need only kubectl.
CLUSTER ?= loopphase
PY ?= .venv/bin/python
OPERATOR_IMAGE ?= loopphase-operator:dev
AGENT_IMAGE ?= loopphase-agent:dev
# Empty: images/build.sh detects the engine (docker when its daemon answers, else podman).
DOCKER ?=
KUBECTL ?= kubectl
KIND ?= kind

.PHONY: kind-up images kind-load deploy example e2e kind-down crd-sync test-operator bench bench-smoke

$(PY):
	python3 dev.py setup

kind-up:
	$(KIND) create cluster --name $(CLUSTER) --config kind-config.yaml

# Both images, built by docker or podman (images/build.sh). Where no image registry is
# reachable, the bases (debian:trixie-slim, node:22-trixie-slim) are built locally first when
# the engine has none (images/build-base.sh: root, debootstrap, npm). BUILD_ARGS passes more,
# e.g. BUILD_ARGS="--build-arg WITH_OPENCODE=1".
images:
	DOCKER=$(DOCKER) OPERATOR_IMAGE=$(OPERATOR_IMAGE) AGENT_IMAGE=$(AGENT_IMAGE) bash images/build.sh

# Into the kind cluster through an image archive (images/kind-load.sh): docker and podman alike.
kind-load:
	DOCKER=$(DOCKER) KIND=$(KIND) bash images/kind-load.sh $(CLUSTER) $(OPERATOR_IMAGE) $(AGENT_IMAGE)

# The CRD in manifests/crds/crd.yaml is generated and committed (a test keeps it equal to the
# models), so deploying needs no Python; crd-sync regenerates it after a model change.
crd-sync: $(PY)
	$(PY) -m loopphase.cli crd -o crds/loopphase.yaml
	cp crds/loopphase.yaml manifests/crds/crd.yaml

# CRDs first and established, then the operator: one apply of both fails on a cluster whose
# discovery does not know kopf.dev yet (and leaves an operator with no peering CRD).
CRDS = crd/loopphases.loopphase.dev crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev

deploy:
	$(KUBECTL) apply -k manifests/crds
	$(KUBECTL) wait --for condition=established --timeout=60s $(CRDS)
	$(KUBECTL) apply -k manifests/
	$(KUBECTL) -n loopphase-system rollout status deployment/loopphase-operator --timeout=180s

# The in-cluster git server (seeded with the example's plans), then the sim LoopPhase.
example:
	$(KUBECTL) apply -k manifests/examples/
	$(KUBECTL) rollout status deployment/git-server --timeout=120s
	$(KUBECTL) get loopphases

test-operator: $(PY)
	$(PY) -m pytest tests/operator -q

e2e: $(PY)
	$(PY) -m pytest -m kind tests/e2e -v

kind-down:
	$(KIND) delete cluster --name $(CLUSTER)

# Benchmarks (see bench/README.md): full sizes write bench/results.json.
bench:
	python3 dev.py bench --full

bench-smoke:
	python3 dev.py bench --smoke
