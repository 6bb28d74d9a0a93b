#!/usr/bin/env bash
# `make test`: the suite in two lanes at once, because they wait on different things.
#
# The broker lane (tests marked `integration`: live workers on a real broker) spends most
# of its time waiting on the broker, rebalances and session timeouts, at about one core;
# the other lane (unit, contract, fuzz, CLI, deploy) is pure CPU for about 3 minutes.
# One after the other they took 15 minutes on 2 cores, side by side about 12. The chaos
# tests, the most sensitive to a busy machine (a worker about keeps up with their feed),
# come last in the broker lane (tests/conftest.py orders them), after the CPU lane has ended. The CPU lane's report is
# printed when both have ended; the exit status fails if either lane failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
log=$(mktemp -t checkpoint-cpu-lane.XXXXXX)
trap 'rm -f "$log"' EXIT

"$PY" -m pytest -q -p no:cacheprovider -m "not integration" --durations=10 "$@" >"$log" 2>&1 &
cpu=$!
"$PY" -m pytest -q -p no:cacheprovider -m integration --durations=25 "$@"
broker_status=$?
wait "$cpu"
cpu_status=$?
echo
echo "== the CPU lane (not integration) =="
cat "$log"
echo "lanes: broker exit ${broker_status}, cpu exit ${cpu_status}"
[ "$broker_status" -eq 0 ] && [ "$cpu_status" -eq 0 ]
