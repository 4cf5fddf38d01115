#!/usr/bin/env bash
# Helper for `git bisect run`.
#
# Usage:
#   git bisect run path/to/bisect-run.sh "<build command>" "<check command>" [timeout-seconds]
#
# Exit codes follow git bisect run's contract:
#   0   = good (check passed)
#   1   = bad  (check failed, timed out, or was killed)
#   125 = skip (this commit cannot be built, so it cannot be judged)
# Any test runner exit code above 127 is mapped to 1 so it cannot abort the bisect.
#
# Tip: keep this script and the check outside the work tree (or copy them to /tmp first),
# because bisect checks out old commits that may not contain them.
set -uo pipefail

if [[ $# -lt 2 ]]; then
  printf 'usage: %s "<build command>" "<check command>" [timeout-seconds]\n' "${0##*/}" >&2
  exit 255 # not a valid bisect verdict: aborts the bisect on misuse
fi

build_cmd=$1
check_cmd=$2
timeout_s=${3:-}

sha=$(git rev-parse --short HEAD)
log_dir=${BISECT_LOG_DIR:-/tmp/bisect-logs}
mkdir -p -- "$log_dir"

printf '[bisect] %s: building\n' "$sha" >&2
if ! bash -c "$build_cmd" >"$log_dir/$sha.build.log" 2>&1; then
  printf '[bisect] %s: build failed, skipping (log: %s)\n' "$sha" "$log_dir/$sha.build.log" >&2
  exit 125
fi

printf '[bisect] %s: checking\n' "$sha" >&2
if [[ -n "$timeout_s" ]] && command -v timeout >/dev/null 2>&1; then
  timeout --kill-after=10 "$timeout_s" bash -c "$check_cmd" >"$log_dir/$sha.check.log" 2>&1
else
  bash -c "$check_cmd" >"$log_dir/$sha.check.log" 2>&1
fi
status=$?

if [[ $status -eq 0 ]]; then
  printf '[bisect] %s: good\n' "$sha" >&2
  exit 0
fi

if [[ $status -eq 124 && -n "$timeout_s" ]]; then
  printf '[bisect] %s: check timed out after %ss, marking bad\n' "$sha" "$timeout_s" >&2
else
  printf '[bisect] %s: check failed with status %d, marking bad (log: %s)\n' \
    "$sha" "$status" "$log_dir/$sha.check.log" >&2
fi
exit 1
