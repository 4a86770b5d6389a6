#!/usr/bin/env bash
# Installs the `sluice` command for the current user (or, as root, for everyone): the bundle
# (one JavaScript file) and a small launcher that runs it with the Deno permissions the given
# configuration needs, so that
#
#   sluice run my-config/        sluice check my-config/        sluice status
#
# work from any directory without a list of --allow flags. The launcher first runs
# `sluice permissions COMMAND ARGS...` (a short step that reads the configuration), then Sluice
# with exactly the flags it printed: read the given paths and the files they name, write outbox
# directories, connect to the connector hosts and listen on health.listen, read the ${VAR}s used.
#
#   bash deploy/install-cli.sh                 (deno task install)
#   bash deploy/install-cli.sh --prefix DIR    DIR/bin/sluice and DIR/lib/sluice/sluice.js
#
# Default prefix: /usr/local as root, else ~/.local. Needs deno on PATH (the launcher keeps the
# path of the deno it was installed with; install again after moving Deno).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'install-cli: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 2
}

if [[ "$(id -u)" == 0 ]]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix)
      [[ $# -ge 2 ]] || die "--prefix needs a directory"
      prefix="$2"
      shift 2
      ;;
    --prefix=*)
      prefix="${1#--prefix=}"
      shift
      ;;
    -h | --help)
      sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument \"$1\": expected --prefix DIR" ;;
  esac
done

deno="$(command -v deno || true)"
[[ -n "$deno" ]] || die "deno is not on PATH: install it first (e.g. npm install -g deno@2.9.5)"
deno="$(readlink -f "$deno")"
mkdir -p "$prefix/bin" "$prefix/lib/sluice"
prefix="$(cd "$prefix" && pwd)"
lib="$prefix/lib/sluice"
bin="$prefix/bin/sluice"

# Never replace a program this script did not install, e.g. the service's executable that
# deploy/install.sh puts in /usr/local/bin.
if [[ -e "$bin" ]] && ! grep -qs 'Installed by deploy/install-cli.sh' "$bin"; then
  die "$bin exists and is not a launcher installed by this script (the service's executable?):" \
    "choose another place with --prefix DIR"
fi

# Built beside the old one and renamed over it, so a running Sluice keeps its file.
"$deno" bundle --quiet --minify --output "$lib/sluice.new.js" src/main.ts
# Characters above U+00FF written as escapes: V8 then holds the source one byte a character.
"$deno" run --no-config --allow-read="$lib/sluice.new.js" --allow-write="$lib/sluice.new.js" \
  tools/escape_bundle.ts "$lib/sluice.new.js"
mv "$lib/sluice.new.js" "$lib/sluice.js"

quote() { printf '%q' "$1"; }
cat >"$bin.new" <<EOF
#!/usr/bin/env bash
# sluice: runs Sluice with the Deno permissions its configuration needs.
# Installed by deploy/install-cli.sh; \`sluice permissions COMMAND ARGS...\` prints the flags.
# Permissions are fixed when Sluice starts: a reload cannot add hosts, paths or variables.
set -uo pipefail
export DENO_NO_UPDATE_CHECK=1
DENO=$(quote "$deno")
PROGRAM=$(quote "$lib/sluice.js")
# The memory settings of deploy/compile.sh and the service (docs/performance.md, "Memory"): a
# young generation of 1 MiB per semi-space, optimising compiles on the main thread, no incremental
# marking. The short step gets them too: V8 takes Deno's cache of compiled code only from a run
# with the same flags, and a run that cannot compiles again and holds more memory.
V8_FLAGS=--v8-flags=--max-semi-space-size=1,--no-concurrent-recompilation,--no-incremental-marking
# This step only reads the configuration (and resolves server names): it needs to read whatever
# the configuration names and the environment its \${VAR}s come from.
step=("\$DENO" run --no-config --no-prompt "\$V8_FLAGS" --allow-read --allow-env --allow-sys=hostname --allow-net)
if [[ "\${1:-}" == permissions ]]; then exec "\${step[@]}" "\$PROGRAM" "\$@"; fi
text=\$("\${step[@]}" "\$PROGRAM" permissions "\$@") || exit \$?
flags=()
if [[ -n "\$text" ]]; then mapfile -t flags <<<"\$text"; fi
# glibc gives freed memory back to the system instead of keeping it for later.
export MALLOC_TRIM_THRESHOLD_=131072
exec "\$DENO" run --no-config --no-prompt "\$V8_FLAGS" "\${flags[@]}" \\
  "\$PROGRAM" "\$@"
EOF
chmod 0755 "$bin.new"
mv "$bin.new" "$bin"
say "installed $bin (runs $lib/sluice.js with $deno)"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) say "note: $prefix/bin is not on PATH; add it, e.g. export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
