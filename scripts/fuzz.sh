#!/usr/bin/env bash
# fuzz.sh FUZZTIME: run every fuzz target under internal/ for FUZZTIME each
# (a duration such as 60s, or a count such as 2000x).
#
# Go 1.26's fuzzing coordinator can fail a duration-bounded run with a bare
# "context deadline exceeded" at the end of -fuzztime, without any failing
# input (golang/go#75804, fixed in Go 1.27). A count (Nx) has no deadline and
# cannot hit it, so make test uses one. For durations, a failure that prints
# exactly that and writes no new input to testdata/fuzz is reported as that
# race and run once more; any other failure, or one with a new input, fails.
set -euo pipefail
fuzztime=${1:?usage: fuzz.sh FUZZTIME}
go=${GO:-go}

corpus_count() { # files in testdata/fuzz/<target> of a package
  find "$1/testdata/fuzz/$2" -type f 2>/dev/null | wc -l
}

run_one() { # dir target -> 0 passed, 1 failed, 2 the coordinator race
  local dir=$1 target=$2 before out rc
  before=$(corpus_count "$dir" "$target")
  out=$(mktemp)
  set +e
  "$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  if ((rc == 0)); then rm -f "$out"; return 0; fi
  if [[ $fuzztime != *x ]] && grep -q '^    context deadline exceeded$' "$out" &&
    ! grep -q 'Failing input written to' "$out" &&
    (($(corpus_count "$dir" "$target") == before)); then
    rm -f "$out"
    return 2
  fi
  rm -f "$out"
  return 1
}

while IFS= read -r file; do
  dir=$(dirname "$file")
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | cut -d' ' -f2); do
    echo "== $dir $target"
    rc=0
    run_one "$dir" "$target" || rc=$?
    if ((rc == 2)); then
      echo "fuzz.sh: $target ended with Go's fuzztime race (golang/go#75804, no failing input): running it again"
      rc=0
      run_one "$dir" "$target" || rc=$?
    fi
    if ((rc != 0)); then
      echo "fuzz.sh: $dir $target failed"
      exit 1
    fi
  done
done < <(grep -rl --include='*_test.go' '^func Fuzz' internal | sort)
