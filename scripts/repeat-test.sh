#!/usr/bin/env bash
# Runs one test file over and over in parallel loops, to catch a hang that shows once in a hundred
# runs, and says where a hung run waits.
#
#   scripts/repeat-test.sh FILE [SECONDS=600] [LOOPS=4] [HANG_SECONDS=45]
#
# Runs alternate between the settings in ALTERNATE (space-separated VAR=value, default none), so
# two settings are compared under the same load: ALTERNATE="HERALD_DIRECT_WRITES=1 HERALD_DIRECT_WRITES=0".
# Every loop stops starting runs after SECONDS. A run still going after HANG_SECONDS is a hang:
# the native stack of every thread of the test process (gdb, when installed) and its state go to
# OUT (default /tmp/repeat-test), then it is killed. One line per run goes to OUT/runs, one per
# hang to OUT/hangs; the summary counts both per setting. A machine that is busy otherwise (the
# reliability suite in a loop beside it, say) finds such hangs sooner.
set -u
file=${1:?usage: scripts/repeat-test.sh FILE [SECONDS] [LOOPS] [HANG_SECONDS]}
seconds=${2:-600}
loops=${3:-4}
hang=${4:-45}
out=${OUT:-/tmp/repeat-test}
read -r -a settings <<< "${ALTERNATE:-NONE=1}"
cd "$(dirname "$0")/.."
mkdir -p "$out"
: > "$out/runs"
: > "$out/hangs"
end=$(( $(date +%s) + seconds ))

loop() {
  local id=$1 i=0
  while [ "$(date +%s)" -lt "$end" ]; do
    local setting=${settings[$(( (i + id) % ${#settings[@]} ))]}
    i=$(( i + 1 ))
    env "$setting" node --conditions=herald-source --import tsx --test "$file" > "$out/log.$id.$i" 2>&1 &
    local runner=$! waited=0
    while kill -0 "$runner" 2> /dev/null && [ "$waited" -lt $(( hang * 2 )) ]; do
      sleep 0.5
      waited=$(( waited + 1 ))
    done
    if kill -0 "$runner" 2> /dev/null; then
      local child
      child=$(pgrep -P "$runner" | head -1)
      {
        echo "== $setting, run $id.$i, process $child: $(ps -o stat=,etime=,time= -p "$child")"
        if command -v gdb > /dev/null; then
          timeout 60 gdb -p "$child" -batch -ex 'thread apply all bt 30' 2>&1 | grep -E '^(Thread|#)'
        fi
      } > "$out/hang.$id.$i"
      echo "$setting $id.$i" >> "$out/hangs"
      kill -9 "$runner" $child 2> /dev/null
      wait "$runner" 2> /dev/null
    else
      wait "$runner"
      local status=$?
      echo "$setting $id.$i $status" >> "$out/runs"
      [ "$status" = 0 ] && rm -f "$out/log.$id.$i"
    fi
  done
}

for id in $(seq 1 "$loops"); do loop "$id" & done
wait
for setting in "${settings[@]}"; do
  echo "$setting: $(grep -c "^$setting " "$out/runs") runs ended ($(grep "^$setting " "$out/runs" | grep -vc ' 0$') failed), $(grep -c "^$setting " "$out/hangs") hung"
done
echo "logs of failed runs and stacks of hung ones: $out"
