#!/usr/bin/env bash
# hack/tools/install.sh — pinned, cached installer for the tools HTQ's
# `make test` uses to validate Kubernetes artefacts.
#
# Usage: hack/tools/install.sh <tool>... | all
#        hack/tools/install.sh --list        # print "<tool> <version>" lines
#
# Sources: only the Go module proxy (go install / wrapper modules under
# hack/tools/modules/) and Debian apt packages (prometheus, promtool).
# Each tool is installed into $TOOLS_DIR (default ~/.cache/htq/tools/bin) and a
# stamp file $TOOLS_STAMP_DIR/<tool>-<version> is written afterwards; a tool
# whose stamp and binary exist is skipped, so a warm rerun takes seconds.
# Build logs go to <TOOLS_DIR>/../logs/<tool>.log.
set -euo pipefail

# ---------------------------------------------------------------------------
# Pinned versions. Single source of truth: hack/tools/tools.mk parses the
# NAME_VERSION=value lines below (keep them simple: no quotes, no spaces).
# The wrapper modules under hack/tools/modules/ must require the same
# versions (checked at build time).
HELM_VERSION=v3.22.0
KUBERNETES_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KUBE_SCORE_VERSION=v1.20.0
CONTROLLER_GEN_VERSION=v0.23.0
GOLANGCI_LINT_VERSION=v2.15.0
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
# ---------------------------------------------------------------------------

ALL_TOOLS=(helm kube-apiserver kubectl etcd kube-score controller-gen golangci-lint promtool prometheus)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
MODULES_DIR="$SCRIPT_DIR/modules"
# The default is a per-user cache shared by every clone (a stamp names each
# tool's version, so clones pinning different versions do not clash and
# `make clean` or a fresh clone does not rebuild them).
TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/htq/tools/bin}"
mkdir -p "$TOOLS_DIR"
TOOLS_DIR="$(cd "$TOOLS_DIR" && pwd)"
TOOLS_STAMP_DIR="${TOOLS_STAMP_DIR:-$(dirname "$TOOLS_DIR")/stamps}"
TOOLS_LOG_DIR="$(dirname "$TOOLS_DIR")/logs"
mkdir -p "$TOOLS_STAMP_DIR" "$TOOLS_LOG_DIR"

log() { printf '%s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

tool_version() {
  case "$1" in
    helm) echo "$HELM_VERSION" ;;
    kube-apiserver | kubectl) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kube-score) echo "$KUBE_SCORE_VERSION" ;;
    controller-gen) echo "$CONTROLLER_GEN_VERSION" ;;
    golangci-lint) echo "$GOLANGCI_LINT_VERSION" ;;
    promtool | prometheus) echo "$PROMETHEUS_DEB_VERSION" ;;
    *) return 1 ;;
  esac
}

# --- Go environment -------------------------------------------------------
go_env() {
  if [[ -z "${GO:-}" ]]; then
    if command -v go >/dev/null 2>&1; then GO=go
    elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
    else die "go not found (set GO=/path/to/go)"; fi
  fi
  # Never download another toolchain; never pick up a go.work from above.
  export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
  # Do not let a caller's GOFLAGS (e.g. -mod=vendor) leak into tool builds.
  export GOFLAGS=
}

# TOOL_GCFLAGS: the compiler flags of the tool builds. The tools that only
# check artefacts (kube-apiserver, kubectl, etcd, helm, kube-score,
# controller-gen) are built without optimisation or inlining: on a first
# `make test` they are compiled from source, and `-N -l` cuts that compile
# by ~20 % (kube-apiserver + kubectl: 375 instead of 473 CPU-seconds on 2
# cores) while the checks they run take a few seconds more (k8s-validate
# 12 s instead of 9.5 s). golangci-lint stays optimised: it analyses the
# whole tree on every run, which unoptimised takes ~1.8 x the CPU (55
# instead of 31 CPU-s for the main module, cold cache), more than its build
# saves (121 instead of 161 CPU-s). Measured 2026-12-07, hack/tools/README.md.
TOOL_GCFLAGS='all=-N -l'

# go_install <pkg> <version> [ldflags...]: `go install pkg@version` into TOOLS_DIR.
go_install() {
  local pkg=$1 version=$2; shift 2
  GOBIN="$TOOLS_DIR" "$GO" install -trimpath -gcflags "$TOOL_GCFLAGS" -ldflags "-s -w $*" "$pkg@$version"
}

# module_require <module-dir> <module-path>: version required by a wrapper go.mod.
module_require() {
  awk -v m="$2" '($1 == m && $2 ~ /^v/) {print $2} ($1 == "require" && $2 == m) {print $3}' "$1/go.mod" | head -n1
}

# wrapper_build <module-dir> <pkg> <out> [ldflags...]: `go build` a main package
# listed as a `tool` in a wrapper module, with its committed go.sum.
wrapper_build() {
  local dir=$1 pkg=$2 out=$3; shift 3
  (cd "$dir" && GOFLAGS=-mod=readonly "$GO" build -trimpath -gcflags "$TOOL_GCFLAGS" -ldflags "-s -w $*" -o "$out.tmp" "$pkg")
  mv -f "$out.tmp" "$out"
}

# gomod_of <module@version>: path of a module's go.mod in the module cache.
gomod_of() {
  "$GO" mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'
}

# --- per-tool builders ----------------------------------------------------
build_helm() {
  # Same ldflags as helm's own Makefile: the default .Capabilities.KubeVersion
  # (helm template / helm lint) is derived from the k8s.io/client-go it uses.
  local gomod cg major minor
  gomod="$(gomod_of "helm.sh/helm/v3@$HELM_VERSION")"
  cg="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$gomod")" # v0.MINOR.PATCH
  [[ "$cg" =~ ^v0\.([0-9]+)\. ]] || die "cannot derive kube version from helm's client-go ($cg)"
  major=1 minor=${BASH_REMATCH[1]}
  go_install helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major" \
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major" \
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
}

# build_kubernetes: kube-apiserver and kubectl in one `go build`, so the
# packages they share (most of them) are compiled once and both link in
# parallel; both are installed, whichever was asked for.
build_kubernetes() {
  local dir="$MODULES_DIR/kubernetes" have minor
  have="$(module_require "$dir" k8s.io/kubernetes)"
  [[ "$have" == "$KUBERNETES_VERSION" ]] ||
    die "$dir/go.mod requires k8s.io/kubernetes $have, install.sh pins $KUBERNETES_VERSION"
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  local ld=()
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=("-X $p.gitVersion=$KUBERNETES_VERSION" "-X $p.gitMajor=1" "-X $p.gitMinor=$minor"
      "-X $p.gitTreeState=clean" "-X $p.buildDate=1970-01-01T00:00:00Z")
  done
  local tmp
  tmp="$(mktemp -d "$TOOLS_DIR/.kubernetes.XXXXXX")"
  (cd "$dir" && GOFLAGS=-mod=readonly "$GO" build -trimpath -gcflags "$TOOL_GCFLAGS" -ldflags "-s -w ${ld[*]}" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
  mv -f "$tmp/kube-apiserver" "$TOOLS_DIR/kube-apiserver"
  mv -f "$tmp/kubectl" "$TOOLS_DIR/kubectl"
  rmdir "$tmp"
}

build_etcd() {
  local dir="$MODULES_DIR/etcd" have
  have="$(module_require "$dir" go.etcd.io/etcd/server/v3)"
  [[ "$have" == "$ETCD_VERSION" ]] ||
    die "$dir/go.mod requires go.etcd.io/etcd/server/v3 $have, install.sh pins $ETCD_VERSION"
  wrapper_build "$dir" go.etcd.io/etcd/server/v3 "$TOOLS_DIR/etcd" \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
}

build_kube_score() {
  go_install github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION" \
    "-X main.version=${KUBE_SCORE_VERSION#v}"
}

build_controller_gen() {
  go_install sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_GEN_VERSION"
}

build_golangci_lint() {
  TOOL_GCFLAGS= go_install github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION" \
    "-X main.version=${GOLANGCI_LINT_VERSION#v}"
}

# --- apt: prometheus + promtool --------------------------------------------
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
POLICY_CREATED=""

restore_policy_rc() {
  if [[ -n "$POLICY_BACKUP" ]]; then
    mv -f "$POLICY_BACKUP" "$POLICY_RC"; POLICY_BACKUP=""
  elif [[ -n "$POLICY_CREATED" ]]; then
    rm -f "$POLICY_RC"; POLICY_CREATED=""
  fi
}

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

deb_installed_version() {
  dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null | awk '$1 == "installed" {print $2}'
}

ensure_prometheus_deb() {
  local have want="$PROMETHEUS_DEB_VERSION"
  have="$(deb_installed_version prometheus || true)"
  if [[ -z "$have" ]]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: prometheus/promtool come from Debian's prometheus package"
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
    # Refresh the package lists only if the pinned version is not known yet.
    if ! apt-cache show "prometheus=$want" >/dev/null 2>&1; then
      as_root apt-get update -q
    fi
    # Keep apt from starting the prometheus service: deny all service starts
    # for the duration of the install (any existing policy-rc.d is restored).
    if [[ -e "$POLICY_RC" ]]; then
      POLICY_BACKUP="$(mktemp "${POLICY_RC}.htq-backup.XXXXXX")"
      as_root cp -p "$POLICY_RC" "$POLICY_BACKUP"
    else
      POLICY_CREATED=1
    fi
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" >/dev/null
    as_root chmod 755 "$POLICY_RC"
    if apt-cache show "prometheus=$want" >/dev/null 2>&1; then
      as_root apt-get install "${apt_opts[@]}" "prometheus=$want"
    else
      log "WARNING: prometheus=$want is not available from apt; installing the candidate version" >&2
      as_root apt-get install "${apt_opts[@]}" prometheus
    fi
    restore_policy_rc
    # If systemd manages services here, make sure it will not run later either.
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
      as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
      as_root service prometheus stop >/dev/null 2>&1 || true
    fi
    have="$(deb_installed_version prometheus)"
  fi
  [[ "$have" == "$want" ]] ||
    log "WARNING: Debian prometheus $have is installed, install.sh pins $want (using $have)" >&2
}

link_deb_binary() { # promtool | prometheus
  ensure_prometheus_deb
  [[ -x "/usr/bin/$1" ]] || die "/usr/bin/$1 missing after installing Debian's prometheus package"
  ln -sfn "/usr/bin/$1" "$TOOLS_DIR/$1"
}

# --- driver -----------------------------------------------------------------
# lock_group: tools built or installed together share a lock (and one build).
lock_group() {
  case "$1" in
    kube-apiserver | kubectl) echo kubernetes ;;
    promtool | prometheus) echo apt ;;
    *) echo "$1" ;;
  esac
}

# write_stamp <tool> <version> <seconds>
write_stamp() {
  local tool=$1 version=$2 secs=$3
  rm -f "$TOOLS_STAMP_DIR/$tool-"[v0-9]*
  {
    echo "tool=$tool"
    echo "version=$version"
    case "$tool" in
      promtool | prometheus) echo "deb_installed=$(deb_installed_version prometheus)" ;;
      *) echo "go=$(go_env && "$GO" env GOVERSION)" ;;
    esac
    echo "installed=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$secs"
  } >"$TOOLS_STAMP_DIR/$tool-$version"
}

install_tool() {
  local tool=$1 version stamp logf start rc=0
  version="$(tool_version "$tool")" || die "unknown tool '$tool' (known: ${ALL_TOOLS[*]} all)"
  stamp="$TOOLS_STAMP_DIR/$tool-$version"
  if [[ -f "$stamp" && -x "$TOOLS_DIR/$tool" ]]; then
    log "$tool $version: cached"
    return 0
  fi
  # One lock per tool (per group for tools built together), so that a run
  # building everything in the background does not hold up a run that
  # needs only one tool; concurrent runs wait for each other's build of the
  # same tool instead of building it twice.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS_STAMP_DIR/.lock-$(lock_group "$tool")"
    flock 9
    if [[ -f "$stamp" && -x "$TOOLS_DIR/$tool" ]]; then
      exec 9>&-
      log "$tool $version: cached (built by a concurrent run)"
      return 0
    fi
  fi
  logf="$TOOLS_LOG_DIR/$tool.log"
  start=$SECONDS
  # Run the builder in a subshell with errexit on; it must not be part of a
  # `||`/`if` context, or bash would silently disable errexit inside it.
  set +e
  (
    set -e
    case "$tool" in
      promtool | prometheus)
        trap restore_policy_rc EXIT
        link_deb_binary "$tool"
        ;;
      helm) go_env; build_helm ;;
      kube-apiserver | kubectl) go_env; build_kubernetes ;;
      etcd) go_env; build_etcd ;;
      kube-score) go_env; build_kube_score ;;
      controller-gen) go_env; build_controller_gen ;;
      golangci-lint) go_env; build_golangci_lint ;;
    esac
  ) >"$logf" 2>&1
  rc=$?
  set -e
  if [[ $rc -ne 0 || ! -x "$TOOLS_DIR/$tool" ]]; then
    printf '%s %s: FAILED (exit %s) after %ss; last lines of %s:\n' "$tool" "$version" "$rc" "$((SECONDS - start))" "$logf" >&2
    tail -n 30 "$logf" >&2
    exit 1
  fi
  write_stamp "$tool" "$version" "$((SECONDS - start))"
  case "$tool" in
    kube-apiserver | kubectl)
      # Built together: stamp the other one too.
      local other=kubectl
      [[ "$tool" == kubectl ]] && other=kube-apiserver
      [[ -x "$TOOLS_DIR/$other" ]] && write_stamp "$other" "$version" "$((SECONDS - start))"
      ;;
  esac
  exec 9>&- 2>/dev/null || true
  case "$tool" in
    promtool | prometheus) log "$tool $version: installed (apt) in $((SECONDS - start)) s" ;;
    *) log "$tool $version: built in $((SECONDS - start)) s" ;;
  esac
}

main() {
  [[ $# -gt 0 ]] || die "usage: $0 <tool>... | all | --list (tools: ${ALL_TOOLS[*]})"
  if [[ "$1" == "--list" ]]; then
    for t in "${ALL_TOOLS[@]}"; do echo "$t $(tool_version "$t")"; done
    return 0
  fi
  local tools=() t
  for t in "$@"; do
    if [[ "$t" == all ]]; then tools+=("${ALL_TOOLS[@]}"); else tools+=("$t"); fi
  done
  for t in "${tools[@]}"; do tool_version "$t" >/dev/null || die "unknown tool '$t' (known: ${ALL_TOOLS[*]} all)"; done

  for t in "${tools[@]}"; do install_tool "$t"; done
}

main "$@"
