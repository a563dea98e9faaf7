# hack/tools/tools.mk — pinned tool chain for HTQ (include from the top-level
# Makefile: `include hack/tools/tools.mk`). See hack/tools/README.md.
#
# Every tool variable below is an absolute path and also a file target, so a
# recipe can simply depend on the tool it runs:
#
#   helm-lint: $(HELM)
#   	$(HELM) lint helm/htq
#
# Versions live in hack/tools/install.sh (NAME_VERSION=value lines); they are
# read here so the stamp file names always match what install.sh writes.

TOOLS_MK_DIR      := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TOOLS_REPO_ROOT   := $(abspath $(TOOLS_MK_DIR)/../..)
TOOLS_INSTALL     := $(TOOLS_MK_DIR)/install.sh
# A per-user cache shared by every clone (stamps are per version): a fresh
# clone or `make clean` does not rebuild the tools.
TOOLS_CACHE_HOME  := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
TOOLS_DIR         ?= $(TOOLS_CACHE_HOME)/htq/tools/bin
override TOOLS_DIR := $(abspath $(TOOLS_DIR))
TOOLS_STAMP_DIR   := $(abspath $(TOOLS_DIR)/..)/stamps
TOOLS_CRDS_DIR    := $(TOOLS_MK_DIR)/crds
KUBE_APISERVER_SH := $(TOOLS_MK_DIR)/kube-apiserver.sh

# TOOLS_HELM_VERSION, TOOLS_KUBERNETES_VERSION, TOOLS_ETCD_VERSION, ...
$(foreach a,$(shell sed -n 's/^\([A-Z_]*_VERSION\)=\([^[:space:]]*\).*/\1=\2/p' $(TOOLS_INSTALL)),$(eval TOOLS_$(a)))

HELM           := $(TOOLS_DIR)/helm
KUBECTL        := $(TOOLS_DIR)/kubectl
KUBE_APISERVER := $(TOOLS_DIR)/kube-apiserver
ETCD           := $(TOOLS_DIR)/etcd
KUBE_SCORE     := $(TOOLS_DIR)/kube-score
CONTROLLER_GEN := $(TOOLS_DIR)/controller-gen
GOLANGCI_LINT  := $(TOOLS_DIR)/golangci-lint
PROMTOOL       := $(TOOLS_DIR)/promtool
PROMETHEUS     := $(TOOLS_DIR)/prometheus

# tools_rules(tool, VAR, version): stamp file target that runs install.sh, the
# binary path depending on it, and a phony tools-<tool> alias.
define tools_rules
$(TOOLS_STAMP_DIR)/$(1)-$(3):
	@TOOLS_DIR='$(TOOLS_DIR)' TOOLS_STAMP_DIR='$(TOOLS_STAMP_DIR)' '$(TOOLS_INSTALL)' $(1)
$$($(2)): $(TOOLS_STAMP_DIR)/$(1)-$(3) ;
.PHONY: tools-$(1)
tools-$(1): $$($(2))
endef

$(eval $(call tools_rules,helm,HELM,$(TOOLS_HELM_VERSION)))
$(eval $(call tools_rules,kubectl,KUBECTL,$(TOOLS_KUBERNETES_VERSION)))
$(eval $(call tools_rules,kube-apiserver,KUBE_APISERVER,$(TOOLS_KUBERNETES_VERSION)))
$(eval $(call tools_rules,etcd,ETCD,$(TOOLS_ETCD_VERSION)))
$(eval $(call tools_rules,kube-score,KUBE_SCORE,$(TOOLS_KUBE_SCORE_VERSION)))
$(eval $(call tools_rules,controller-gen,CONTROLLER_GEN,$(TOOLS_CONTROLLER_GEN_VERSION)))
$(eval $(call tools_rules,golangci-lint,GOLANGCI_LINT,$(TOOLS_GOLANGCI_LINT_VERSION)))
$(eval $(call tools_rules,promtool,PROMTOOL,$(TOOLS_PROMETHEUS_DEB_VERSION)))
$(eval $(call tools_rules,prometheus,PROMETHEUS,$(TOOLS_PROMETHEUS_DEB_VERSION)))

# The same targets spelled out, so `grep -E '^[a-zA-Z_-]+:.*##'` lists them.
tools-helm: ## Install helm (helm.sh/helm/v3) into the tools cache
tools-kubectl: ## Install kubectl (k8s.io/kubernetes wrapper module) into the tools cache
tools-kube-apiserver: ## Install kube-apiserver (k8s.io/kubernetes wrapper module) into the tools cache
tools-etcd: ## Install etcd (go.etcd.io/etcd/server/v3 wrapper module) into the tools cache
tools-kube-score: ## Install kube-score into the tools cache
tools-controller-gen: ## Install controller-gen (sigs.k8s.io/controller-tools) into the tools cache
tools-golangci-lint: ## Install golangci-lint v2 into the tools cache
tools-promtool: ## Install promtool (Debian prometheus package, symlinked) into the tools cache
tools-prometheus: ## Install prometheus (Debian prometheus package, symlinked) into the tools cache

.PHONY: tools tools-kube-env tools-gen-crds tools-clean
tools: ## Install every pinned tool into the tools cache (cached: seconds when up to date)
	@TOOLS_DIR='$(TOOLS_DIR)' TOOLS_STAMP_DIR='$(TOOLS_STAMP_DIR)' '$(TOOLS_INSTALL)' all

tools-kube-env: $(ETCD) $(KUBE_APISERVER) $(KUBECTL) ## Install etcd, kube-apiserver and kubectl (for hack/tools/kube-apiserver.sh)

tools-gen-crds: $(CONTROLLER_GEN) ## Regenerate hack/tools/crds/ from the pinned prometheus-operator and KEDA Go types
	@CONTROLLER_GEN='$(CONTROLLER_GEN)' '$(TOOLS_MK_DIR)/gen-crds.sh'

tools-clean: ## Remove the installed tools, their stamps and build logs (Go caches are kept)
	rm -f $(HELM) $(KUBECTL) $(KUBE_APISERVER) $(ETCD) $(KUBE_SCORE) $(CONTROLLER_GEN) $(GOLANGCI_LINT) $(PROMTOOL) $(PROMETHEUS)
	rm -rf '$(TOOLS_STAMP_DIR)' '$(abspath $(TOOLS_DIR)/..)/logs'
