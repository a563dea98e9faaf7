#!/usr/bin/env bash
# make test: every check CI runs, arranged so that a first run on a fresh
# machine does not wait for the pinned tools before any test starts.
#
#   - The Go-built tools (golangci-lint, etcd, kube-apiserver + kubectl,
#     helm, kube-score, controller-gen) are built in the background at the
#     lowest CPU priority from the first second, into the per-user cache
#     (~/.cache/htq/tools), so the tests keep the CPU they need and a second
#     clone or `make clean` never rebuilds them.
#   - The tests that need no tool run meanwhile, one stage at a time: the
#     system tests judge timing, so nothing of ours competes with them.
#   - The stages that need a tool (lint, Kubernetes checks) run last, each
#     waiting only for its own tool (hack/tools/install.sh locks per tool).
#
# Every stage runs even when an earlier one failed; the run ends with a
# summary (stage, time, result) and fails if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."

MAKE=${MAKE:-make}
make_q() { "$MAKE" --no-print-directory "$@"; }

tools_dir=$(make_q -s print-tools-dir)
mkdir -p "$tools_dir"
log_dir=tmp/test
mkdir -p "$log_dir"

# --- the tools, in the background -------------------------------------------
# The order is the order the stages need them in.
bg_tools=(golangci-lint etcd kube-apiserver kubectl helm kube-score controller-gen)
missing=()
for t in "${bg_tools[@]}"; do
  v=$(TOOLS_DIR=$tools_dir hack/tools/install.sh --list | awk -v t="$t" '$1 == t {print $2}')
  [[ -f "$(dirname "$tools_dir")/stamps/$t-$v" && -x "$tools_dir/$t" ]] || missing+=("$t")
done
bg_pid=
if ((${#missing[@]})); then
  echo "make test: building ${missing[*]} into $tools_dir in the background"
  echo "  (once per machine and version; about 10-15 minutes on 2 cores, at the lowest CPU priority while the tests run)"
  TOOLS_DIR=$tools_dir nice -n 19 hack/tools/install.sh "${missing[@]}" >"$log_dir/tools.log" 2>&1 &
  bg_pid=$!
else
  echo "make test: pinned tools cached in $tools_dir"
fi

# --- stages -------------------------------------------------------------------
names=() times=() results=()
failed=0
stage() { # stage <name> <make target>...
  local name=$1 start rc
  shift
  printf '\n=== %s (make %s)\n' "$name" "$*"
  start=$SECONDS
  make_q TOOLS_DIR="$tools_dir" "$@"
  rc=$?
  names+=("$name")
  times+=($((SECONDS - start)))
  if ((rc == 0)); then results+=(ok); else results+=("FAILED (exit $rc)"); failed=1; fi
}

total_start=$SECONDS
stage "redis-server" redis
stage "chromium (browser tests)" chromium
stage "format and vet" check-format vet
stage "unit and integration tests (race)" test-go
stage "alert rules and dashboard" monitoring-check
stage "system tests" test-system
stage "fuzzing, brief" fuzz-short
stage "benchmark harness" test-bench-harness
if [[ -n $bg_pid ]]; then
  printf '\n=== waiting for the background tool builds (log: %s)\n' "$log_dir/tools.log"
  wait_start=$SECONDS
  if ! wait "$bg_pid"; then
    echo "background tool build failed (the stages below retry it in the foreground):"
    tail -n 30 "$log_dir/tools.log"
  fi
  cat "$log_dir/tools.log"
  names+=("tool builds (wait after the tests)")
  times+=($((SECONDS - wait_start)))
  results+=(ok)
fi
stage "lint (golangci-lint)" lint
stage "Kubernetes: chart, deploy/k8s, kube-apiserver" k8s-test

printf '\n=== summary\n'
for i in "${!names[@]}"; do
  printf '  %-48s %5ss  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
done
printf '  %-48s %5ss  %s\n' "total" "$((SECONDS - total_start))" "$( ((failed)) && echo FAILED || echo ok)"
exit "$failed"
