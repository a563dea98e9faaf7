# hack/k8s.mk — checks of HTQ's Kubernetes deliverables: the Helm chart
# (helm/htq), the kustomize base (deploy/k8s) and the Dockerfile.
# Include it after hack/tools/tools.mk (it uses $(HELM), $(KUBECTL), ...):
#
#   include hack/tools/tools.mk
#   include hack/k8s.mk
#
# `make k8s-test` runs every check (offline; the pinned tools are built once
# into ~/.cache/htq/tools and cached). Paths are absolute, so it works from any directory.

K8S_ROOT         := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
K8S_CHART        := $(K8S_ROOT)/helm/htq
K8S_DEPLOY       := $(K8S_ROOT)/deploy/k8s
K8S_MONITORING   := $(K8S_ROOT)/deploy/monitoring
K8S_CHARTCHECK_DIR := $(K8S_ROOT)/hack/chartcheck
K8S_OUT          := $(K8S_ROOT)/tmp/k8s
K8S_RENDER       := $(K8S_OUT)/render
K8S_CHARTCHECK   := $(K8S_OUT)/bin/chartcheck
# The Kubernetes version of the test API server (hack/tools: v1.36.3).
K8S_KUBE_VERSION := $(patsubst v%,%,$(TOOLS_KUBERNETES_VERSION))
K8S_RELEASE      := htq
K8S_NAMESPACE    := htq
# The test API server serves these CRD groups, so render as a cluster with
# KEDA and the Prometheus operator would (the ScaledObject is gated on it).
K8S_API_VERSIONS := --api-versions keda.sh/v1alpha1 --api-versions monitoring.coreos.com/v1
K8S_HELM_TEMPLATE = $(HELM) template $(K8S_RELEASE) $(K8S_CHART) --namespace $(K8S_NAMESPACE) --kube-version $(K8S_KUBE_VERSION)
# Values files: each helm/htq/ci/X-values.yaml renders to tmp/k8s/render/X.yaml.
# Their "# chartcheck: want=Kind,... / absent=Kind,..." lines say what
# chartcheck expects to find rendered.
K8S_CI_VALUES    := $(sort $(wildcard $(K8S_CHART)/ci/*-values.yaml))
K8S_BAD_VALUES   := $(sort $(wildcard $(K8S_CHART)/ci-invalid/*-values.yaml))
# deploy/k8s is the chart's defaults, except that the Secret is yours to
# create (a generated token would make every rendering differ).
K8S_DEPLOY_SET   := --set secrets.existingSecret=$(K8S_RELEASE)
# Files kept in helm/htq/files/ as copies (Helm cannot read outside the chart).
K8S_SYNCED       := alerts.rules.yaml grafana-dashboard.json
K8S_GO           := cd $(K8S_CHARTCHECK_DIR) && GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" $(or $(GO),go)

# kube-score: every check runs, plus these optional ones.
K8S_KUBE_SCORE_ENABLE := container-seccomp-profile container-ports-check
# kube-score findings accepted, each with its reason:
#  container-image-pull-policy: wants imagePullPolicy Always on every
#    container. The chart deploys immutable version tags (or a digest, with
#    image.digest) and defaults to IfNotPresent, so a registry outage does not
#    stop pods from restarting; clusters that need pull-time credential checks
#    for cached images set image.pullPolicy=Always (or run the
#    AlwaysPullImages admission plugin).
K8S_KUBE_SCORE_IGNORE := container-image-pull-policy
K8S_KUBE_SCORE_FLAGS = --kubernetes-version v$(basename $(K8S_KUBE_VERSION)) --output-format ci --exit-one-on-warning \
	$(addprefix --enable-optional-test ,$(K8S_KUBE_SCORE_ENABLE)) $(addprefix --ignore-test ,$(K8S_KUBE_SCORE_IGNORE))

K8S_TARGETS := k8s-test helm-lint helm-template chart-schema-check chart-notes-check chart-check chart-rules-check kube-score crds-check \
	k8s-validate deploy-k8s deploy-k8s-check chart-sync chart-sync-check $(K8S_CHARTCHECK)
.PHONY: $(filter-out $(K8S_CHARTCHECK),$(K8S_TARGETS))
$(K8S_TARGETS): SHELL := bash
$(K8S_TARGETS): .SHELLFLAGS := -eu -o pipefail -c

k8s-test: chart-sync-check helm-lint chart-schema-check chart-notes-check chart-check kube-score deploy-k8s-check crds-check k8s-validate ## every Kubernetes check: lint, schema, NOTES, chartcheck, kube-score, deploy/k8s and CRD freshness, real API server
	@echo "k8s-test: ok"

helm-lint: $(HELM) ## helm lint --strict the chart with its defaults and every helm/htq/ci values file
	@$(HELM) lint --strict --quiet $(K8S_CHART) --kube-version $(K8S_KUBE_VERSION)
	@for f in $(K8S_CI_VALUES); do \
	  $(HELM) lint --strict --quiet $(K8S_CHART) --kube-version $(K8S_KUBE_VERSION) -f "$$f" || { echo "helm-lint: $$f failed"; exit 1; }; \
	done
	@echo "helm-lint: ok (defaults + $(words $(K8S_CI_VALUES)) values files)"

helm-template: $(HELM) ## render the chart for each helm/htq/ci values file into tmp/k8s/render/
	@rm -rf $(K8S_RENDER) && mkdir -p $(K8S_RENDER)
	@for f in $(K8S_CI_VALUES); do \
	  n=$$(basename "$$f" -values.yaml); \
	  $(K8S_HELM_TEMPLATE) $(K8S_API_VERSIONS) -f "$$f" > $(K8S_RENDER)/$$n.yaml; \
	done
	@# The ScaledObject is rendered only where KEDA's CRD is served: without it,
	@# the autoscaling values must render no ScaledObject and a fixed replica count.
	@$(K8S_HELM_TEMPLATE) -f $(K8S_CHART)/ci/autoscaling-values.yaml > $(K8S_RENDER)/autoscaling-no-keda-crd.yaml
	@echo "helm-template: $$(ls $(K8S_RENDER) | wc -l) renderings in $(K8S_RENDER)"

chart-schema-check: $(HELM) ## every helm/htq/ci-invalid values file must be REJECTED by values.schema.json
	@test -n "$(K8S_BAD_VALUES)" || { echo "chart-schema-check: no files in helm/htq/ci-invalid"; exit 1; }
	@mkdir -p $(dir $(K8S_OUT))
	@for f in $(K8S_BAD_VALUES); do \
	  if $(K8S_HELM_TEMPLATE) -f "$$f" > /dev/null 2> $(K8S_OUT).schema.err; then \
	    echo "chart-schema-check: FAIL: $$f was accepted"; exit 1; \
	  fi; \
	  grep -q "don't meet the specifications of the schema" $(K8S_OUT).schema.err || { \
	    echo "chart-schema-check: FAIL: $$f failed, but not by the schema:"; cat $(K8S_OUT).schema.err; exit 1; }; \
	done; rm -f $(K8S_OUT).schema.err
	@echo "chart-schema-check: ok ($(words $(K8S_BAD_VALUES)) bad values files rejected by the schema)"

# helm template leaves NOTES.txt out, so a copy of the chart renders it as
# the string of a ConfigMap (templates/zz-notes-check.yaml), once per values
# file. A Redis URL's userinfo must never be printed: a username is dropped,
# and a URL with a password must not render at all, even when the schema is
# skipped (it would be in the ConfigMap).
K8S_NOTES_CHART := $(K8S_OUT)/notes/htq
K8S_NOTES = $(HELM) template $(K8S_RELEASE) $(K8S_NOTES_CHART) --namespace $(K8S_NAMESPACE) --kube-version $(K8S_KUBE_VERSION) \
	$(K8S_API_VERSIONS) --show-only templates/zz-notes-check.yaml
chart-notes-check: $(HELM) ## render NOTES.txt for every helm/htq/ci values file; it never prints a Redis URL's userinfo
	@rm -rf $(dir $(K8S_NOTES_CHART)) && mkdir -p $(dir $(K8S_NOTES_CHART)) && cp -R $(K8S_CHART) $(K8S_NOTES_CHART)
	@{ echo '{{- define "htq.notesCheck" }}'; cat $(K8S_CHART)/templates/NOTES.txt; echo '{{- end }}'; \
	  printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: notes}' 'data:' '  NOTES.txt: {{ include "htq.notesCheck" . | toJson }}'; \
	} > $(K8S_NOTES_CHART)/templates/zz-notes-check.yaml
	@notes() { $(K8S_NOTES) "$$@" > $(K8S_OUT).notes && grep -q 'Reach the API' $(K8S_OUT).notes || { echo "chart-notes-check: NOTES.txt did not render ($$*)"; cat $(K8S_OUT).notes; return 1; }; \
	  if grep -Eq 'rediss?://[^/?#" ]*@' $(K8S_OUT).notes; then echo "chart-notes-check: FAIL: NOTES.txt prints a Redis URL's userinfo ($$*)"; return 1; fi; }; \
	for f in $(K8S_CI_VALUES); do notes -f "$$f" || exit 1; done; \
	notes -f $(K8S_CHART)/ci/external-redis-values.yaml --set externalRedis.url=rediss://htq@redis.example.internal:6380/2 || exit 1; \
	grep -q 'rediss://redis.example.internal:6380/2' $(K8S_OUT).notes || { echo "chart-notes-check: FAIL: NOTES.txt does not show the Redis URL without its userinfo"; exit 1; }; \
	for u in redis://:secret@redis.example.internal:6379 rediss://htq:secret@redis.example.internal:6380/2; do \
	  if $(K8S_HELM_TEMPLATE) --skip-schema-validation --set redis.enabled=false --set externalRedis.url=$$u > /dev/null 2> $(K8S_OUT).notes; then \
	    echo "chart-notes-check: FAIL: externalRedis.url with a password rendered (with --skip-schema-validation)"; exit 1; fi; \
	  grep -q 'externalRedis.url must not hold a password' $(K8S_OUT).notes || { echo "chart-notes-check: FAIL: externalRedis.url with a password failed, but not for that:"; cat $(K8S_OUT).notes; exit 1; }; \
	done
	@rm -f $(K8S_OUT).notes; echo "chart-notes-check: ok ($(words $(K8S_CI_VALUES)) values files + a URL with a username; URLs with a password refused)"

$(K8S_CHARTCHECK): $(wildcard $(K8S_CHARTCHECK_DIR)/*.go $(K8S_CHARTCHECK_DIR)/go.*)
	@mkdir -p $(dir $@)
	@$(K8S_GO) build -trimpath -o $@ .

chart-check: helm-template chart-rules-check $(K8S_CHARTCHECK) $(KUBECTL) ## strict decode + consistency checks (hack/chartcheck) of every rendering and deploy/k8s
	@$(K8S_GO) vet ./... && $(K8S_GO) test -count=1 ./...
	@for f in $(K8S_CI_VALUES); do \
	  n=$$(basename "$$f" -values.yaml); \
	  want=$$(sed -n 's/^# chartcheck: want=//p' "$$f" | tr -d ' '); absent=$$(sed -n 's/^# chartcheck: absent=//p' "$$f" | tr -d ' '); \
	  $(K8S_CHARTCHECK) -readme $(K8S_ROOT)/README.md $${want:+-want $$want} $${absent:+-absent $$absent} $(K8S_RENDER)/$$n.yaml; \
	done
	@$(K8S_CHARTCHECK) -readme $(K8S_ROOT)/README.md -absent ScaledObject $(K8S_RENDER)/autoscaling-no-keda-crd.yaml
	@grep -q '^  replicas: 2$$' <(sed -n '/^# Source: htq\/templates\/dispatcher-deployment.yaml/,/^---/p' $(K8S_RENDER)/autoscaling-no-keda-crd.yaml) || \
	  { echo "chart-check: without KEDA's CRD the dispatcher Deployment must keep its replicas"; exit 1; }
	@$(KUBECTL) kustomize $(K8S_DEPLOY) | $(K8S_CHARTCHECK) -readme $(K8S_ROOT)/README.md -absent Secret -

chart-rules-check: $(PROMTOOL) ## promtool check rules on the chart's copy of the alert rules
	@$(PROMTOOL) check rules $(K8S_CHART)/files/alerts.rules.yaml > /dev/null
	@echo "chart-rules-check: ok"

kube-score: helm-template $(KUBE_SCORE) $(KUBECTL) ## kube-score every rendering and deploy/k8s (accepted findings are listed in hack/k8s.mk)
	@for f in $(K8S_RENDER)/*.yaml; do \
	  $(KUBE_SCORE) score $(K8S_KUBE_SCORE_FLAGS) "$$f" > $(K8S_OUT).score || { echo "kube-score: $$f:"; grep -v '^\[\(OK\|SKIPPED\)\]' $(K8S_OUT).score; exit 1; }; \
	done
	@$(KUBECTL) kustomize $(K8S_DEPLOY) | $(KUBE_SCORE) score $(K8S_KUBE_SCORE_FLAGS) - > $(K8S_OUT).score || \
	  { echo "kube-score: deploy/k8s:"; grep -v '^\[\(OK\|SKIPPED\)\]' $(K8S_OUT).score; exit 1; }
	@rm -f $(K8S_OUT).score
	@echo "kube-score: ok (ignored: $(K8S_KUBE_SCORE_IGNORE))"

# The CRDs k8s-validate applies (hack/tools/crds) must be what controller-gen
# makes from the Go types pinned in hack/tools/modules/crdgen. About 3 s once
# controller-gen is built and the module cache has those modules (the first
# run fetches them from the module proxy, like the tools themselves).
crds-check: $(CONTROLLER_GEN) ## fail if hack/tools/crds is not what hack/tools/gen-crds.sh would write
	@CONTROLLER_GEN='$(CONTROLLER_GEN)' TOOLS_DIR='$(TOOLS_DIR)' '$(TOOLS_MK_DIR)/gen-crds.sh' --check

# A real etcd + kube-apiserver on loopback: the CRDs are applied first, then
# every rendering and deploy/k8s must pass a server-side dry run in a
# namespace that enforces the "restricted" Pod Security Standard (its
# warnings for workloads fail the check too).
k8s-validate: helm-template $(ETCD) $(KUBE_APISERVER) $(KUBECTL) ## kubectl apply --dry-run=server of every rendering and deploy/k8s on a real kube-apiserver
	@wd=$$(mktemp -d); trap 'TOOLS_DIR=$(TOOLS_DIR) $(KUBE_APISERVER_SH) stop '"$$wd"' >/dev/null 2>&1; rm -rf '"$$wd" EXIT; \
	env=$$(TOOLS_DIR=$(TOOLS_DIR) $(KUBE_APISERVER_SH) start $$wd 2>$$wd/start.log) || { cat $$wd/start.log; exit 1; }; \
	eval "$$env"; test -n "$${KUBECONFIG:-}"; \
	k() { $(KUBECTL) "$$@"; }; \
	k apply -f $(TOOLS_CRDS_DIR) > /dev/null; \
	k wait --for=condition=Established --timeout=60s crd --all > /dev/null; \
	k create namespace $(K8S_NAMESPACE) > /dev/null; \
	k label namespace $(K8S_NAMESPACE) pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted > /dev/null; \
	dry() { \
	  if ! k apply --dry-run=server -n $(K8S_NAMESPACE) "$$@" > $$wd/out 2> $$wd/err; then cat $$wd/err; return 1; fi; \
	  if grep -q . $$wd/err; then echo "warnings:"; cat $$wd/err; return 1; fi; \
	  grep -c 'server dry run' $$wd/out; }; \
	for f in $(K8S_RENDER)/*.yaml; do \
	  n=$$(dry -f "$$f") || { echo "k8s-validate: FAIL: $$f"; echo "$$n"; exit 1; }; \
	  echo "k8s-validate: $$(basename $$f): $$n objects accepted"; \
	done; \
	n=$$(dry -k $(K8S_DEPLOY)) || { echo "k8s-validate: FAIL: deploy/k8s"; echo "$$n"; exit 1; }; \
	echo "k8s-validate: deploy/k8s: $$n objects accepted"

# deploy/k8s: one file per chart template, a kustomization listing them.
define k8s_render_deploy
	@rm -rf $(1) && mkdir -p $(1)
	@$(K8S_HELM_TEMPLATE) $(K8S_DEPLOY_SET) \
	  | sed 's/^\(\s*app.kubernetes.io\/managed-by:\) Helm$$/\1 kustomize/' \
	  | awk -v dir=$(1) ' \
	      /^# Source: / { f = $$3; sub(/^.*\//, "", f); out = dir "/" f; \
	        if (!(out in seen)) { seen[out] = 1; print "# Generated by `make deploy-k8s` from helm/htq (the chart defaults, secrets.existingSecret=htq). Do not edit." > out } \
	        print "---" > out; next } \
	      /^---$$/ { next } \
	      out != "" { print > out }'
	@{ echo "# Generated by \`make deploy-k8s\` from helm/htq. Do not edit; see README.md."; \
	  echo "apiVersion: kustomize.config.k8s.io/v1beta1"; echo "kind: Kustomization"; \
	  echo "namespace: $(K8S_NAMESPACE)"; echo "resources:"; \
	  for f in $$(cd $(1) && ls *.yaml | grep -v '^kustomization.yaml$$' | sort); do echo "  - $$f"; done; } > $(1)/kustomization.yaml
endef

deploy-k8s: $(HELM) ## regenerate deploy/k8s (kustomize base) from the chart's defaults
	$(call k8s_render_deploy,$(K8S_OUT)/deploy)
	@find $(K8S_DEPLOY) -maxdepth 1 -name '*.yaml' -delete 2>/dev/null || true
	@mkdir -p $(K8S_DEPLOY) && cp $(K8S_OUT)/deploy/*.yaml $(K8S_DEPLOY)/
	@echo "deploy-k8s: wrote $$(ls $(K8S_OUT)/deploy | wc -l) files to deploy/k8s"

deploy-k8s-check: $(HELM) ## fail if deploy/k8s is not what `make deploy-k8s` would write
	$(call k8s_render_deploy,$(K8S_OUT)/deploy)
	@diff -r -x README.md $(K8S_OUT)/deploy $(K8S_DEPLOY) > $(K8S_OUT).diff || \
	  { cat $(K8S_OUT).diff; echo "deploy-k8s-check: deploy/k8s is stale: run make deploy-k8s"; exit 1; }
	@rm -f $(K8S_OUT).diff; echo "deploy-k8s-check: ok"

chart-sync: ## copy deploy/monitoring's alert rules and dashboard into helm/htq/files
	@for f in $(K8S_SYNCED); do \
	  if [ -f $(K8S_MONITORING)/$$f ]; then cp $(K8S_MONITORING)/$$f $(K8S_CHART)/files/$$f; echo "chart-sync: $$f"; \
	  else echo "chart-sync: deploy/monitoring/$$f does not exist yet: keeping the placeholder"; fi; \
	done

chart-sync-check: ## fail if helm/htq/files differs from deploy/monitoring (run make chart-sync)
	@for f in $(K8S_SYNCED); do \
	  if [ ! -f $(K8S_MONITORING)/$$f ]; then \
	    echo "chart-sync-check: deploy/monitoring/$$f does not exist yet: helm/htq/files/$$f is a placeholder"; \
	  elif ! cmp -s $(K8S_MONITORING)/$$f $(K8S_CHART)/files/$$f; then \
	    echo "chart-sync-check: helm/htq/files/$$f differs from deploy/monitoring/$$f: run make chart-sync"; exit 1; \
	  fi; \
	done
	@echo "chart-sync-check: ok"
