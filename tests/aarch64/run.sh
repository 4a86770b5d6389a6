#!/usr/bin/env bash
# Runs Sluice's end-to-end tests with the Sluice process on aarch64 Deno under qemu user-mode
# emulation (the Raspberry Pi target), while the test runner and nats-server stay x86_64.
#
#   bash tests/aarch64/run.sh              prepare (cached) and run the selected tests
#   bash tests/aarch64/run.sh --prepare    prepare only, then print the SLUICE_DENO to use
#
# Preparation, cached in $SLUICE_AARCH64_CACHE (default ~/.cache/sluice-aarch64):
#   - qemu-user-static from Debian, when qemu-aarch64-static is missing;
#   - the aarch64 Deno binary from the npm package @deno/linux-arm64-glibc, at the version of the
#     x86_64 deno on PATH or, when that is unpublished, the nearest published one (printed);
#   - a sysroot with Debian's arm64 libc6 and libgcc-s1 (apt-get download, dpkg -x);
#   - a DENO_DIR for the emulated Deno, pre-populated by the x86_64 deno (npm packages are JS).
# Then it proves the binary is aarch64 (`file`, and Deno.build.arch under qemu) and runs the
# tests with SLUICE_DENO (the harness spawns Sluice with it) and SLUICE_TEST_TIMEOUT_SCALE.
#
# Environment:
#   SLUICE_AARCH64_CACHE          cache directory
#   SLUICE_AARCH64_DENO_VERSION   aarch64 Deno version to use instead of the resolved one
#   SLUICE_AARCH64_TESTS          space-separated test files (default: the smoke test, plus
#                                 tests/e2e_test.ts when it exists)
#   SLUICE_AARCH64_FILTER         deno test --filter (default: the tests that matter, see below)
#   SLUICE_AARCH64_MIN_PASSED     fewer passed tests fail the run (default 5 with e2e_test.ts)
#   SLUICE_TEST_TIMEOUT_SCALE     timeout factor for the harness (default 10)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

CACHE="${SLUICE_AARCH64_CACHE:-${HOME:-/root}/.cache/sluice-aarch64}"
NPM_PACKAGE="@deno/linux-arm64-glibc"
SYSROOT_PACKAGES=(libc6 libgcc-s1)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

say() { printf '[aarch64] %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

prepare_only=false
case "${1:-}" in
  "") ;;
  --prepare) prepare_only=true ;;
  *) die "unknown argument \"$1\": expected nothing or --prepare" ;;
esac

command -v deno >/dev/null 2>&1 || die "deno (x86_64) is not on PATH"
mkdir -p "$CACHE"
prep_start="$(now)"

# --- qemu (and file, to check the binary) ------------------------------------------------------
missing=()
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v file >/dev/null 2>&1 || missing+=(file)
if ((${#missing[@]} > 0)); then
  say "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
QEMU="$(command -v qemu-aarch64-static)" || die "qemu-aarch64-static missing after install"

# --- aarch64 Deno -------------------------------------------------------------------------------
host_version="$(deno --version | awk 'NR == 1 { print $2 }')"
resolved_file="$CACHE/deno-version-for-$host_version"
if [[ -n "${SLUICE_AARCH64_DENO_VERSION:-}" ]]; then
  version="$SLUICE_AARCH64_DENO_VERSION"
elif published="$(npm view "$NPM_PACKAGE" versions --json 2>/dev/null)"; then
  # The same version when published; else the newest older one; else the oldest newer one.
  version="$(
    HOST="$host_version" deno eval --quiet '
      const parse = (v) => v.split(".").map(Number);
      const cmp = (a, b) => { const x = parse(a), y = parse(b);
        for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
        return 0; };
      const host = Deno.env.get("HOST");
      const all = [JSON.parse(await new Response(Deno.stdin.readable).text())].flat()
        .filter((v) => /^\d+\.\d+\.\d+$/.test(v)).sort(cmp);
      const older = all.filter((v) => cmp(v, host) <= 0);
      console.log(older.at(-1) ?? all[0] ?? "");
    ' <<<"$published"
  )"
  [[ -n "$version" ]] || die "no published version of $NPM_PACKAGE"
  echo "$version" >"$resolved_file"
elif [[ -s "$resolved_file" ]]; then
  version="$(cat "$resolved_file")"
  say "npm registry unreachable: using the cached choice $version"
else
  die "cannot list the versions of $NPM_PACKAGE (npm view failed) and none is cached"
fi
if [[ "$version" == "$host_version" ]]; then
  say "aarch64 deno $version (same as the x86_64 deno)"
else
  say "aarch64 deno $version: $NPM_PACKAGE@$host_version is not published, using the nearest"
fi

DENO_ARM64="$CACHE/deno-$version/deno"
if [[ ! -x "$DENO_ARM64" ]]; then
  say "fetching $NPM_PACKAGE@$version"
  work="$(mktemp -d "$CACHE/.pack.XXXXXX")"
  (cd "$work" && npm pack --silent "$NPM_PACKAGE@$version" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  [[ -f "$work/package/deno" ]] || die "$NPM_PACKAGE@$version has no package/deno"
  chmod +x "$work/package/deno"
  rm -rf "$CACHE/deno-$version"
  mkdir -p "$CACHE/deno-$version"
  mv "$work/package/deno" "$DENO_ARM64"
  rm -rf "$work"
fi
file -L "$DENO_ARM64" | grep -q "ARM aarch64" ||
  die "$DENO_ARM64 is not an aarch64 executable: $(file -L "$DENO_ARM64")"

# --- arm64 sysroot ------------------------------------------------------------------------------
SYSROOT="$CACHE/sysroot"
if [[ ! -f "$SYSROOT/.complete" ]]; then
  say "building the arm64 sysroot (${SYSROOT_PACKAGES[*]})"
  apt_dir="$CACHE/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  : >"$apt_dir/status"
  # arm64 indexes in lists and caches of their own: the system's apt state is not touched.
  apt_opts=(
    -qq
    -oAPT::Architecture=arm64
    -oAPT::Architectures=arm64
    "-oDir::State::Lists=$apt_dir/lists"
    "-oDir::State::Status=$apt_dir/status"
    "-oDir::Cache=$apt_dir/cache"
    -oAPT::Sandbox::User=root
  )
  apt-get "${apt_opts[@]}" update
  debs="$(mktemp -d "$CACHE/.debs.XXXXXX")"
  (cd "$debs" && apt-get "${apt_opts[@]}" download "${SYSROOT_PACKAGES[@]}")
  rm -rf "$SYSROOT" "$SYSROOT.tmp"
  mkdir -p "$SYSROOT.tmp"
  for deb in "$debs"/*.deb; do
    [[ "$(dpkg-deb -f "$deb" Architecture)" == "arm64" ]] || die "$deb is not arm64"
    dpkg -x "$deb" "$SYSROOT.tmp"
    basename "$deb" >>"$SYSROOT.tmp/.complete"
  done
  rm -rf "$debs"
  mv "$SYSROOT.tmp" "$SYSROOT"
fi

# --- DENO_DIR of the emulated Deno --------------------------------------------------------------
# Its own cache (no sharing of code caches between two Deno builds), filled by the x86_64 deno:
# the npm packages are plain JS, so the emulated Deno finds everything it needs there.
ARM_DENO_DIR="$CACHE/deno_dir"
DENO_DIR="$ARM_DENO_DIR" deno cache --quiet src/main.ts

# --- Verify ------------------------------------------------------------------------------------
# The command prefix the harness runs Sluice with (split on whitespace). `env` carries DENO_DIR
# even into tests that spawn Sluice with a cleared environment.
SLUICE_DENO="env DENO_DIR=$ARM_DENO_DIR $QEMU -L $SYSROOT $DENO_ARM64"
[[ "$(wc -w <<<"$SLUICE_DENO")" -eq 6 ]] ||
  die "the cache path has whitespace; set SLUICE_AARCH64_CACHE to a path without any"
say "$(file -L "$DENO_ARM64" | cut -c1-120)"
reported="$($SLUICE_DENO --version | head -n 1)"
say "under qemu: $reported"
[[ "$reported" == *aarch64* ]] || die "the emulated deno reports \"$reported\", not aarch64"
arch="$($SLUICE_DENO eval --quiet 'console.log(Deno.build.arch)')"
[[ "$arch" == "aarch64" ]] || die "Deno.build.arch under qemu is \"$arch\", not aarch64"
say "Deno.build.arch under qemu: $arch"
say "prepared in $(since "$prep_start") (cache: $CACHE)"

if $prepare_only; then
  echo "SLUICE_DENO=$SLUICE_DENO"
  exit 0
fi

# --- Tests -------------------------------------------------------------------------------------
# The end-to-end tests that matter on the Pi: routing (with its filter), the dead letter, the
# SIGTERM drain, the bundled single file (when a test for it exists); plus the architecture probe
# of smoke_test.ts. Until tests/e2e_test.ts exists, the whole smoke test stands in for them.
tests=(tests/aarch64/smoke_test.ts)
[[ -f tests/e2e_test.ts ]] && tests+=(tests/e2e_test.ts)
[[ -f tests/bundle_test.ts ]] && tests+=(tests/bundle_test.ts)
if [[ -n "${SLUICE_AARCH64_TESTS:-}" ]]; then
  read -r -a tests <<<"$SLUICE_AARCH64_TESTS"
fi
if [[ " ${tests[*]} " == *" tests/e2e_test.ts "* ]]; then
  smoke=0
  min_passed=8
else
  smoke=1
  min_passed=3
fi
filter="${SLUICE_AARCH64_FILTER:-/(?i)aarch64|rout|filter|dead.?letter|sigterm|drain|bundl/}"
min_passed="${SLUICE_AARCH64_MIN_PASSED:-$min_passed}"

export SLUICE_DENO
export SLUICE_EXPECT_ARCH=aarch64
export SLUICE_AARCH64_SMOKE="$smoke"
export SLUICE_TEST_TIMEOUT_SCALE="${SLUICE_TEST_TIMEOUT_SCALE:-10}"
say "running ${tests[*]} (filter $filter, timeouts x$SLUICE_TEST_TIMEOUT_SCALE)"
test_start="$(now)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
NO_COLOR=1 deno test --allow-net --allow-read --allow-write --allow-run --allow-env --allow-sys \
  --filter "$filter" "${tests[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
say "tests took $(since "$test_start") (exit $status)"
passed="$(sed -nE 's/^(ok|FAILED) \| ([0-9]+) passed.*/\2/p' "$log" | tail -n 1)"
if ((status == 0 && ${passed:-0} < min_passed)); then
  # A renamed or removed test must not silently shrink what is proven on aarch64.
  say "error: only ${passed:-0} tests passed, expected at least $min_passed: check the filter"
  status=1
fi
exit "$status"
