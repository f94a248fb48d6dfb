# LoopPhase on kind: make kind-up images deploy example; make e2e; make kind-down
# Prerequisites: docker (or podman: DOCKER=podman, and KIND_EXPERIMENTAL_PROVIDER=podman for
# kind), kind, kubectl, python3 >= 3.11. Targets that run Python create ./.venv themselves
# (python3 dev.py setup); deploy and example need only kubectl.
CLUSTER ?= loopphase
PY ?= .venv/bin/python
OPERATOR_IMAGE ?= loopphase-operator:dev
AGENT_IMAGE ?= loopphase-agent:dev
DOCKER ?= docker
KUBECTL ?= kubectl
KIND ?= kind
IMAGE_ARCHIVE ?= .kind-images.tar

.PHONY: kind-up images deploy example e2e kind-down crd-sync test-operator bench bench-smoke

$(PY):
	python3 dev.py setup

kind-up:
	$(KIND) create cluster --name $(CLUSTER) --config kind-config.yaml

# Loaded through an image archive: works the same for docker and podman.
images:
	$(DOCKER) build -f images/operator/Dockerfile -t $(OPERATOR_IMAGE) .
	$(DOCKER) build -f images/agent/Dockerfile -t $(AGENT_IMAGE) .
	$(DOCKER) save -o $(IMAGE_ARCHIVE) $(OPERATOR_IMAGE)
	$(KIND) load image-archive --name $(CLUSTER) $(IMAGE_ARCHIVE)
	$(DOCKER) save -o $(IMAGE_ARCHIVE) $(AGENT_IMAGE)
	$(KIND) load image-archive --name $(CLUSTER) $(IMAGE_ARCHIVE)
	rm -f $(IMAGE_ARCHIVE)

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

# Manual/dev check, not part of the tests or CI (needs root, the network, several minutes): run
# both Dockerfiles' steps in a debootstrapped Debian root filesystem, then the images' commands
# as the pods run them. See docs/kubernetes.md. E.g. VERIFY_ROOTFS_ARGS="--keep" or
# VERIFY_ROOTFS_ARGS="--build-arg WITH_OPENCODE=1".
.PHONY: images-verify-rootfs
images-verify-rootfs:
	bash images/verify-rootfs.sh $(VERIFY_ROOTFS_ARGS)
