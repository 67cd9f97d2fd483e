#!/usr/bin/env bash
# bench:ingest (--url mode) against two servers in the same run, rounds alternating between them:
# Node 20 here (uWebSockets.js 20.30 on this glibc) and Node 24 in the Debian 13 root of
# scripts/test-node24.sh (20.57). Both use one Postgres, the embedded one the Node 20 server starts,
# so only the runtime and the uWS build differ. Prints the medians over the rounds per scenario.
# Must run as root (the root needs chroot and mounts).
#
#   scripts/bench-node24.sh [--rounds N] [bench:ingest options, e.g. --duration 10 --connections 50]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
rounds=3
if [ "${1:-}" = "--rounds" ]; then
  rounds="$2"
  shift 2
fi
out="$repo/bench/results/node24-$(date -u +%Y%m%dT%H%M%SZ)"
pg_port="${BENCH_PG_PORT:-55431}"
node20_port="${BENCH_NODE20_PORT:-18020}"
node24_port="${BENCH_NODE24_PORT:-18024}"
mkdir -p "$out"
npm run build --silent

pids=()
stop_servers() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop_servers EXIT
wait_ready() { # wait_ready <port> <pid>
  local deadline=$((SECONDS + 180))
  until curl -fs "http://127.0.0.1:$1/readyz" >/dev/null; do
    kill -0 "$2" 2>/dev/null || { echo "server on :$1 exited; see $out" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "server on :$1 not ready in 180 s" >&2; exit 1; }
    sleep 1
  done
}

HOST=127.0.0.1 PORT="$node20_port" LOG_LEVEL=warn EMBEDDED_PG_PORT="$pg_port" \
  EMBEDDED_PG_DATA_DIR="$out/postgres" node dist/src/main.js >"$out/node20.log" 2>&1 &
pids+=($!)
wait_ready "$node20_port" "${pids[0]}"
dsn="postgres://postgres:$(tr -d '\n' <"$out/postgres.password")@127.0.0.1:$pg_port/pulse"
scripts/test-node24.sh -- env HOST=127.0.0.1 PORT="$node24_port" LOG_LEVEL=warn \
  POSTGRES_DSN="$dsn" node dist/src/main.js >"$out/node24.log" 2>&1 &
pids+=($!)
wait_ready "$node24_port" "${pids[1]}"
# What each server runs on, from its own /internal/metrics: the Node version and the uWS build.
for target in node20:"$node20_port" node24:"$node24_port"; do
  curl -fs "http://127.0.0.1:${target#*:}/internal/metrics" |
    grep -E '^pulse_(uws_build_info|process_nodejs_version_info)' |
    sed "s/^/${target%%:*} /" >>"$out/servers.txt"
done
cat "$out/servers.txt"

for ((round = 1; round <= rounds; round++)); do
  for target in node20:"$node20_port" node24:"$node24_port"; do
    node --import tsx bench/ingest.ts --url "http://127.0.0.1:${target#*:}" --runs 1 \
      --scenarios single,bulk --json "$out/${target%%:*}-$round.json" "$@" \
      >"$out/${target%%:*}-$round.txt" 2>&1
    echo "round $round/$rounds ${target%%:*} done"
  done
done

node --input-type=module - "$out" "$rounds" <<'EOF'
import { readFileSync } from 'node:fs';
const [out, rounds] = process.argv.slice(2);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`medians of ${rounds} alternating rounds (results in ${out})`);
for (const target of ['node20', 'node24']) {
  const runs = Array.from({ length: Number(rounds) }, (_, i) =>
    JSON.parse(readFileSync(`${out}/${target}-${i + 1}.json`, "utf8")).runs.flatMap((r) => r.scenarios),
  ).flat();
  for (const scenario of ['single', 'bulk']) {
    const mine = runs.filter((r) => r.scenario === scenario);
    const stored = median(mine.map((r) => r.storedEventsPerSecond ?? 0));
    const rps = median(mine.map((r) => r.load.requestsPerSecond));
    const p99 = median(mine.map((r) => r.load.latencyP99Ms));
    console.log(
      `${target} ${scenario.padEnd(6)} ${Math.round(stored)} stored events/s, ${Math.round(rps)} req/s, p99 ${p99} ms`,
    );
  }
}
EOF
