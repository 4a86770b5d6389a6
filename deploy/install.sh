#!/usr/bin/env bash
# Installs (or upgrades) Sluice as a systemd service on a gateway, as root. Run it from a clone of
# the repository (or an unpacked release) that holds the executable or the bundle in dist/.
#
#   sudo bash deploy/install.sh                  the executable dist/sluice-<this machine's target>
#   sudo bash deploy/install.sh PATH             that executable
#   sudo bash deploy/install.sh --bundle [PATH]  dist/sluice.js (or PATH), run by the `deno` on
#                                                PATH with the same narrow flags as the executable
#
# It creates the system user `sluice`, installs the program, the unit and, only when missing,
# /etc/sluice with the example configuration and /etc/sluice/sluice.env. Existing configuration
# is never overwritten. An upgrade (running it again with a newer build) restarts a running
# service, because a new program needs a new process; `systemctl reload sluice` is for
# configuration changes only.
#
# Environment:
#   SLUICE_ROOT   install below this directory instead of / (for trying it out: no user is
#                 created, no systemctl is run)
#   SLUICE_START  set to 1 to enable and start the service after installing
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROOT="${SLUICE_ROOT:-}"
say() { printf 'install: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

bundle=false
if [[ "${1:-}" == "--bundle" ]]; then
  bundle=true
  shift
fi
case "$(uname -m)" in
  x86_64 | amd64) target=x86_64-unknown-linux-gnu ;;
  aarch64 | arm64) target=aarch64-unknown-linux-gnu ;;
  *) die "unsupported machine \"$(uname -m)\": Sluice builds for x86_64 and aarch64 (64-bit OS)" ;;
esac
if $bundle; then
  program="${1:-dist/sluice.js}"
  [[ -f "$program" ]] || die "no bundle at $program: build it with \`deno task bundle\`"
  deno="$(command -v deno || true)"
  [[ -n "$deno" ]] || die "--bundle needs deno on PATH (e.g. npm install -g deno)"
  deno="$(readlink -f "$deno")"
else
  program="${1:-dist/sluice-$target}"
  [[ -f "$program" ]] ||
    die "no executable at $program: build it with \`deno task compile\` (or use --bundle)"
fi
[[ -n "$ROOT" || "$(id -u)" == 0 ]] || die "run as root (sudo), or set SLUICE_ROOT to try it out"

BIN="$ROOT/usr/local/bin"
LIB="$ROOT/usr/local/lib/sluice"
ETC="$ROOT/etc/sluice"
UNIT_DIR="$ROOT/etc/systemd/system"

# --- user ---------------------------------------------------------------------------------------
if [[ -z "$ROOT" ]] && ! id sluice >/dev/null 2>&1; then
  say "creating system user sluice"
  useradd --system --user-group --home-dir /var/lib/sluice --no-create-home \
    --shell /usr/sbin/nologin --comment "Sluice event router" sluice
fi
owner() { [[ -n "$ROOT" ]] || chown "$@"; }

# --- program ------------------------------------------------------------------------------------
mkdir -p "$BIN" "$UNIT_DIR"
if $bundle; then
  mkdir -p "$LIB"
  install -m 0644 "$program" "$LIB/sluice.js.new"
  if [[ -f "$LIB/sluice.js" ]]; then ln -f "$LIB/sluice.js" "$LIB/sluice.js.previous"; fi
  mv "$LIB/sluice.js.new" "$LIB/sluice.js"
  say "installed $LIB/sluice.js (run by $deno)"
else
  # Replace by rename, so that a running process keeps its old file; the previous program stays
  # as sluice.previous (a hard link: no extra space) for a rollback.
  install -m 0755 "$program" "$BIN/sluice.new"
  if [[ -f "$BIN/sluice" ]]; then ln -f "$BIN/sluice" "$BIN/sluice.previous"; fi
  mv "$BIN/sluice.new" "$BIN/sluice"
  say "installed $BIN/sluice"
fi

# --- configuration ------------------------------------------------------------------------------
if [[ ! -d "$ETC" ]]; then
  mkdir -p "$ETC"
  install -m 0640 connectors/*.yaml pipelines/*.yaml "$ETC/"
  say "created $ETC with the example configuration: edit it before starting"
fi
if [[ ! -f "$ETC/sluice.env" ]]; then
  install -m 0640 deploy/sluice.env.example "$ETC/sluice.env"
  say "created $ETC/sluice.env: set NATS_URL and friends there"
fi
# The service user reads the configuration and credentials; only root changes them.
owner -R root:sluice "$ETC"
chmod 0750 "$ETC"

# --- unit ---------------------------------------------------------------------------------------
install -m 0644 deploy/sluice.service "$UNIT_DIR/sluice.service"
dropin="$UNIT_DIR/sluice.service.d/bundle.conf"
if $bundle; then
  mkdir -p "$(dirname "$dropin")"
  # The same flags as the executable's, so both ways behave alike.
  mapfile -t flags < <(bash deploy/compile.sh --print-flags)
  cat >"$dropin" <<EOF
# Written by deploy/install.sh --bundle: run the bundle with deno instead of an executable.
[Service]
ExecStart=
ExecStart=$deno run --no-config ${flags[*]} /usr/local/lib/sluice/sluice.js run --log-format json /etc/sluice
# Deno's cache of compiled code, for faster starts.
CacheDirectory=sluice
Environment=DENO_DIR=/var/cache/sluice DENO_NO_UPDATE_CHECK=1
EOF
  say "wrote $dropin"
elif [[ -f "$dropin" ]]; then
  rm -f "$dropin"
  say "removed $dropin: the executable runs now"
fi

# --- first start --------------------------------------------------------------------------------
# Deno analyses a new bundle once and caches the result; the process that does so keeps about 50
# MiB of freed parser memory resident for as long as it runs (docs/performance.md, "Memory").
# Done here with the service's cache and flags (V8 takes the cached compiled code only from a run
# with the same V8 flags), the service never is that process.
if $bundle; then
  cache="$ROOT/var/cache/sluice"
  mkdir -p "$cache"
  owner sluice:sluice "$cache"
  warm=(env DENO_DIR="$cache" DENO_NO_UPDATE_CHECK=1 "$deno" run --no-config --no-prompt
    "${flags[@]}" "$LIB/sluice.js" --version)
  if [[ -z "$ROOT" ]]; then warm=(runuser -u sluice -- "${warm[@]}"); fi
  "${warm[@]}" >/dev/null || die "the installed bundle does not start: ${warm[*]}"
  say "warmed Deno's cache in $cache"
fi

if [[ -n "$ROOT" ]]; then
  say "done (below $ROOT; no user created, systemd not touched)"
  exit 0
fi
systemctl daemon-reload
if [[ "${SLUICE_START:-0}" == 1 ]]; then
  systemctl enable --now sluice
  say "sluice enabled and started: journalctl -u sluice -f -o cat"
elif systemctl is-active --quiet sluice; then
  systemctl restart sluice
  say "sluice restarted with the new program"
else
  if $bundle; then
    run="$deno run --no-config ${flags[*]} /usr/local/lib/sluice/sluice.js"
  else
    run=/usr/local/bin/sluice
  fi
  say "next: edit $ETC, check it as the service will read it:"
  say "  sudo -u sluice sh -c 'set -a; . $ETC/sluice.env; exec $run check $ETC'"
  say "then: systemctl enable --now sluice; journalctl -u sluice -f -o cat"
fi
