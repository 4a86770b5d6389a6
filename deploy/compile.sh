#!/usr/bin/env bash
# Builds single executables of Sluice with `deno compile`, one per target, with narrow permissions
# baked in (a compiled executable takes no Deno flags at run time: what is granted here is all it
# gets). It compiles the bundle (dist/sluice.js, as `deno task bundle` builds it) rather than
# src/main.ts: the executable then embeds exactly the file that tests/bundle_test.ts runs, and
# about 7 MB less than the npm packages' unbundled files.
#
#   bash deploy/compile.sh                  both targets into dist/ (`deno task compile`)
#   bash deploy/compile.sh TARGET...        only these, e.g. aarch64-unknown-linux-gnu
#   bash deploy/compile.sh --print-flags    print the flags (permissions, V8), one a line, and exit
#
# Environment (the defaults fit deploy/sluice.service):
#   SLUICE_CONFIG_DIR     /etc/sluice       read: configuration, credentials, TLS files
#   SLUICE_STATE_DIR      /var/lib/sluice   read and write: outboxes (buffer.path must lie in it)
#   SLUICE_ALLOW_NET      empty: any host   hosts to reach and listen on, e.g.
#                                           127.0.0.1:4222,127.0.0.1:9180 (NATS, health)
#   SLUICE_ALLOW_ENV      NATS_*,SLUICE_*   variables the configuration may use as ${VAR}; the
#                                           YAML parser's LOG_TOKENS,LOG_STREAM are always added
#   SLUICE_DIST           dist              output directory
#   SLUICE_DENORT_X86_64  (unset)           a local denort of this Deno version for that target,
#   SLUICE_DENORT_AARCH64 (unset)           for machines that cannot download it (see below)
#
# `deno compile` takes its base runtime (denort) from the Deno release
# host, once per target. Where that host is unreachable, fetch denort-<target>.zip of the same Deno
# version elsewhere, unzip it, and point SLUICE_DENORT_<ARCH> at the file (passed on as
# DENORT_BIN). Without either, `deno task bundle` still builds dist/sluice.js, which runs
# anywhere Deno is installed: `deno run <the flags of --print-flags> dist/sluice.js run ...`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONFIG_DIR="${SLUICE_CONFIG_DIR:-/etc/sluice}"
STATE_DIR="${SLUICE_STATE_DIR:-/var/lib/sluice}"
ALLOW_NET="${SLUICE_ALLOW_NET:-}"
ALLOW_ENV="${SLUICE_ALLOW_ENV:-NATS_*,SLUICE_*}"
DIST="${SLUICE_DIST:-dist}"
ALL_TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)

say() { printf 'compile: %s\n' "$*" >&2; }

# The flags baked into executables (and given to `deno run` by install.sh --bundle): the
# permissions, and two V8 settings for memory (docs/performance.md, "Memory"): a young generation
# of at most 1 MiB per semi-space (V8's default lets it grow to 16 MiB per semi-space under a
# flood, about 20 MiB more resident memory), and optimising compiles on the main thread (a
# background compiler thread leaves its freed memory resident: 4-8 MiB more at the peak). Neither
# costs measurable CPU per event. The service unit adds MALLOC_TRIM_THRESHOLD_, which an
# executable cannot carry.
flags() {
  printf '%s\n' \
    "--v8-flags=--max-semi-space-size=1,--no-concurrent-recompilation,--no-incremental-marking" \
    "--allow-read=$CONFIG_DIR,$STATE_DIR" \
    "--allow-write=$STATE_DIR" \
    "--allow-env=$ALLOW_ENV,LOG_TOKENS,LOG_STREAM" \
    "--allow-net${ALLOW_NET:+=$ALLOW_NET}" \
    "--allow-sys=hostname"
}

if [[ "${1:-}" == "--print-flags" ]]; then
  flags
  exit 0
fi

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")
for target in "${targets[@]}"; do
  case "$target" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
    *)
      say "unknown target \"$target\": expected one of ${ALL_TARGETS[*]} or --print-flags"
      exit 2
      ;;
  esac
done

mapfile -t FLAGS < <(flags)
version="$(deno --version | awk 'NR == 1 { print $2 }')"
mkdir -p "$DIST"
bundle="$DIST/sluice.js"
deno bundle --quiet --minify --output "$bundle" src/main.ts
# Characters above U+00FF written as escapes: V8 then holds the source one byte a character.
deno run --no-config --allow-read="$bundle" --allow-write="$bundle" tools/escape_bundle.ts "$bundle"
say "bundled $bundle: $(($(stat -c %s "$bundle") / 1024)) KiB"
failed=0
for target in "${targets[@]}"; do
  out="$DIST/sluice-$target"
  arch="${target%%-*}"
  denort_var="SLUICE_DENORT_${arch^^}"
  denort="${!denort_var:-}"
  say "building $out (deno $version, flags: ${FLAGS[*]})"
  log="$(mktemp)"
  started="$(date +%s)"
  # An empty DENORT_BIN counts as set: pass it only when given.
  if env ${denort:+DENORT_BIN="$denort"} deno compile --quiet --no-config --target "$target" \
    --output "$out" "${FLAGS[@]}" "$bundle" 2>"$log"; then
    size="$(stat -c %s "$out")"
    say "built $out: $((size / 1024 / 1024)) MiB in $(($(date +%s) - started)) s"
  else
    failed=1
    if grep -qE 'Setting up base binary|error sending request|dns error' "$log"; then
      say "FAILED $target: deno compile could not download its base runtime" \
        "(denort-$target.zip for Deno $version) from the Deno release host."
      say "  Build on a machine that reaches it, or download that zip elsewhere, unzip it and run"
      say "  again with $denort_var=/path/to/denort. Meanwhile $bundle (built above) runs"
      say "  anywhere Deno is installed: deno run <flags of --print-flags> $bundle run ..."
      say "  deno said: $(grep -m1 -E 'error sending request|dns error' "$log" | sed 's/^ *//')"
    else
      say "FAILED $target:"
      cat "$log" >&2
    fi
  fi
  rm -f "$log"
done
exit "$failed"
