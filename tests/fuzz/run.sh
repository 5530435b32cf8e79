#!/usr/bin/env bash
# Short fuzz run for make test: one libFuzzer target over its seed corpus for N seconds.
# The corpus in the source tree is read-only input; new finds go to a scratch folder.
set -euo pipefail
bin=$1 corpus=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
[ -d "$corpus" ] && cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" 2>"$work/log" || {
  tail -50 "$work/log"
  keep=${SMKI_BUILD:-/tmp}/fuzz-artifacts
  mkdir -p "$keep" && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$keep"/ 2>/dev/null
  echo "artifacts kept in $keep"
  exit 1
}
grep -E 'stat::number_of_executed_units|Done' "$work/log" | tail -2
