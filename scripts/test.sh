#!/usr/bin/env bash
# Runs every check and test: setup (idempotent), build + typecheck, lint, images, then one vitest
# run over every workspace (unit, integration against real nats-server/dockerd, e2e). Always ends
# with the line `tests: N passed, N failed` (a failed step before the tests counts as one failure)
# and exits non-zero when anything failed. Extra arguments go to vitest (e.g. --project store).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PLOYZ_ROOT"

failed_steps=()
started_dockerd=""
passed=0
failed=0
skipped=0
failed_tests=()

step() {
  local name=$1
  shift
  printf '\n== %s\n' "$name"
  local t0=$SECONDS
  if "$@"; then
    printf '== %s: ok (%d s)\n' "$name" $((SECONDS - t0))
  else
    printf '== %s: FAILED (%d s)\n' "$name" $((SECONDS - t0))
    failed_steps+=("$name")
  fi
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$started_dockerd" ] && kill -0 "$started_dockerd" 2>/dev/null; then
    printf '== stopping the dockerd this run started (pid %s)\n' "$started_dockerd"
    kill -TERM "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.5; done
  fi
  failed=$((failed + ${#failed_steps[@]}))
  [ ${#failed_steps[@]} -gt 0 ] && printf '\nfailed steps: %s\n' "${failed_steps[*]}"
  # The failed tests by name, last, so that the tail of a long log says what broke.
  if [ ${#failed_tests[@]} -gt 0 ]; then
    printf '\nfailed tests:\n'
    printf '  %s\n' "${failed_tests[@]}"
  fi
  [ "$failed" -gt 0 ] && [ "$rc" -eq 0 ] && rc=1
  local tail=""
  [ "$skipped" -gt 0 ] && tail=", $skipped skipped"
  printf 'tests: %d passed, %d failed%s\n' "$passed" "$failed" "$tail"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# Remember whether a Docker engine answered before setup, so a dockerd that setup starts for this
# run (and only that one) is stopped at the end.
docker_was_up=0
if command -v docker >/dev/null && docker version >/dev/null 2>&1; then docker_was_up=1; fi

step setup bash scripts/setup.sh
if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "setup failed; nothing else can run" >&2
  exit 1
fi
hash -r
if [ "$docker_was_up" = 0 ] && [ -f /var/run/ployz/dockerd.pid ]; then
  started_dockerd=$(cat /var/run/ployz/dockerd.pid)
fi

step "build + typecheck" pnpm turbo run build typecheck --output-logs=errors-only
step lint pnpm biome check .
step images bash scripts/images.sh

# Three vitest runs: everything but e2e (in parallel), then the e2e scenarios in two lanes at once
# — the netns-machine scenarios (fleets, engine restarts, reboot: their own dockerds) beside the
# single-machine ones on the host engine — each lane one file at a time, so at most two scenarios
# compete for the two cores and neither lane touches the other's engine. Each run's JSON report is
# summed into the closing line; the slowest files are listed so a slow CI says where it went.
vitest_rc=0
slow_files=()
# Runs vitest with a JSON report at $1 (the rest: vitest arguments); its exit status is vitest's.
vitest_lane() {
  local report=$1
  shift
  pnpm vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
}
# Sums the JSON report at $2 (from a run that exited with $3) into the totals, named $1.
collect_report() {
  local name=$1 report=$2 rc=$3
  local p=0 f=0 s=0
  if [ -f "$report" ]; then
    # One pass over the report: "T passed failed skipped", then "F <failed test or its why>" and
    # "S <seconds> <file>" lines.
    local tag line
    while IFS= read -r line; do
      tag=${line%% *}
      line=${line#* }
      case "$tag" in
        T) read -r p f s <<<"$line" ;;
        F) failed_tests+=("$line") ;;
        S) slow_files+=("$line") ;;
      esac
    done < <(REPORT=$report node -e '
      const r = JSON.parse(require("fs").readFileSync(process.env.REPORT, "utf8"));
      const root = process.cwd() + "/";
      // A file that fails to load counts as a failure even though it ran no test.
      const broken = r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
      console.log(`T ${r.numPassedTests} ${r.numFailedTests + broken} ${r.numPendingTests + r.numTodoTests}`);
      for (const f of r.testResults) {
        const file = f.name.startsWith(root) ? f.name.slice(root.length) : f.name;
        if (f.endTime && f.startTime) console.log(`S ${Math.round((f.endTime - f.startTime) / 1000)} ${file}`);
        if (f.status === "failed" && f.assertionResults.length === 0) console.log(`F ${file}: ${(f.message || "failed to load").split("\n")[0]}`);
        for (const a of f.assertionResults) {
          if (a.status !== "failed") continue;
          console.log(`F ${file} > ${a.fullName}`);
          // The first lines of the first failure, so a CI tail says why, not only what.
          const why = (a.failureMessages?.[0] ?? "").split("\n").filter((l) => l.trim()).slice(0, 3);
          for (const l of why) console.log(`F       ${l.trim().slice(0, 200)}`);
        }
      }
    ' 2>/dev/null || echo "T 0 1 0")
    rm -f "$report"
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "vitest ($name) exited with $rc (an error outside any test, or no report)" >&2
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  [ "$rc" -ne 0 ] && vitest_rc=$rc
  return 0
}
new_report() { local r; r=$(mktemp /tmp/ployz-vitest-XXXXXX); rm -f "$r"; echo "$r"; }

t_tests=$SECONDS
if [ $# -gt 0 ]; then
  printf '\n== tests: selected\n'
  report=$(new_report)
  vitest_lane "$report" "$@"
  collect_report selected "$report" $?
else
  printf '\n== tests: packages and apps\n'
  report=$(new_report)
  vitest_lane "$report" --project '!e2e'
  collect_report "packages and apps" "$report" $?
  printf '== tests: packages and apps (%d s)\n' $((SECONDS - t_tests))

  lane_machines=()
  lane_single=()
  for f in e2e/test/*.test.ts; do
    if grep -q "fleet-harness\|restart-harness\|createNetnsHost" "$f"; then lane_machines+=("$f"); else lane_single+=("$f"); fi
  done
  t_e2e=$SECONDS
  printf '\n== tests: e2e scenarios, two lanes (netns machines: %d files; host engine: %d files)\n' \
    ${#lane_machines[@]} ${#lane_single[@]}
  report_m=$(new_report)
  report_s=$(new_report)
  # Each lane's lines carry its name; the lanes' exit statuses come back through files.
  rc_m=$(mktemp)
  rc_s=$(mktemp)
  { vitest_lane "$report_m" --project e2e "${lane_machines[@]}" 2>&1; echo $? >"$rc_m"; } | sed -u 's/^/[machines] /' &
  pid_m=$!
  { vitest_lane "$report_s" --project e2e "${lane_single[@]}" 2>&1; echo $? >"$rc_s"; } | sed -u 's/^/[single] /' &
  pid_s=$!
  wait "$pid_m" "$pid_s"
  collect_report "e2e machines" "$report_m" "$(cat "$rc_m" 2>/dev/null || echo 1)"
  collect_report "e2e single" "$report_s" "$(cat "$rc_s" 2>/dev/null || echo 1)"
  rm -f "$rc_m" "$rc_s"
  printf '== tests: e2e scenarios (%d s)\n' $((SECONDS - t_e2e))
fi
if [ ${#slow_files[@]} -gt 0 ]; then
  printf '\nslowest test files (s):\n'
  printf '%s\n' "${slow_files[@]}" | sort -rn | head -n 12 | sed 's/^/  /'
fi
exit "$vitest_rc"
