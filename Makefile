# LoopPhase on kind: make kind-up images deploy example; make e2e; make kind-down
CLUSTER ?= loopphase
PY ?= .venv/bin/python
OPERATOR_IMAGE ?= loopphase-operator:dev
AGENT_IMAGE ?= loopphase-agent:dev
DOCKER ?= docker
KUBECTL ?= kubectl

.PHONY: kind-up images deploy example e2e kind-down crd-sync test-operator bench bench-smoke

kind-up:
	kind create cluster --name $(CLUSTER) --config kind-config.yaml

images:
	$(DOCKER) build -f images/operator/Dockerfile -t $(OPERATOR_IMAGE) .
	$(DOCKER) build -f images/agent/Dockerfile -t $(AGENT_IMAGE) .
	kind load docker-image --name $(CLUSTER) $(OPERATOR_IMAGE) $(AGENT_IMAGE)

crd-sync:
	$(PY) -m loopphase.cli crd -o crds/loopphase.yaml
	cp crds/loopphase.yaml manifests/crds/crd.yaml

# CRDs first and established, then the operator: one apply of both fails on a cluster whose
# discovery does not know kopf.dev yet (and leaves an operator with no peering CRD).
CRDS = crd/loopphases.loopphase.dev crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev

deploy: crd-sync
	$(KUBECTL) apply -k manifests/crds
	$(KUBECTL) wait --for condition=established --timeout=60s $(CRDS)
	$(KUBECTL) apply -k manifests/
	$(KUBECTL) -n loopphase-system rollout status deployment/loopphase-operator --timeout=180s

example:
	$(KUBECTL) apply -k manifests/examples/
	$(KUBECTL) get loopphases

test-operator:
	$(PY) -m pytest tests/operator -q

e2e:
	$(PY) -m pytest -m kind tests/e2e -v

kind-down:
	kind delete cluster --name $(CLUSTER)

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
