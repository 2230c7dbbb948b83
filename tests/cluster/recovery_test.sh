#!/usr/bin/env bash
# Recovery by re-placement (issue 20, section 4) on four bed hosts: train_mlp on 6 ranks
# over h1-h3, h4 spare. h2's link goes down mid-training; haein run names h2, excludes it,
# gives h2's ranks to h4 node for node (the others stay), and train_mlp resumes from its
# last checkpoint and ends with the same parameter checksum as an uninterrupted run on h1-h3.
#   recovery_test.sh BUILD_DIR
set -euo pipefail

# shellcheck source=haein_bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/haein_bed.sh"
haein_bed "${1:?build dir}" 4

# job NAME: haein run on h1 (6 ranks, one restart allowed) training into $BED_SHARED/NAME.
job() {
  "$BED_RSH" h1 "$(quote env PATH=/usr/bin:/bin OMPI_MCA_plm_rsh_agent="$BED_RSH" \
    OMPI_MCA_btl_tcp_if_include="$BED_SUBNET" OMPI_MCA_oob_tcp_if_include="$BED_SUBNET" \
    HAEIN_TIMEOUT=5 "$haein" run -c "$BED_SHARED/hosts" -n 6 --backend mpirun --max-restarts 1 \
    --log-dir "$BED_SHARED/$1-job" -- "$train" --hidden 64,64 --global-batch 96 \
    --train-samples 8192 --test-samples 2048 --log-every 10 --eval-every 0 --no-plot \
    --steps 160 --checkpoint-every 50 --out "$BED_SHARED/$1")"
}
checksum() { grep -o "parameter checksum [0-9a-f]*" "$1" | tail -n 1 | awk '{print $3}'; }

# The faulted run: h2's link down at step 70, between checkpoints (a link lost inside one is
# caught by train_mlp's watched section; that path is not this test's).
( rc=0; job faulted >"$tmp/faulted.out" 2>&1 || rc=$?; echo "$rc" >"$tmp/faulted.end" ) &
for _ in $(seq 1200); do grep -q "step .* 70/" "$tmp/faulted.out" 2>/dev/null && break; sleep 0.1; done
grep -q "step .* 70/" "$tmp/faulted.out" || fail "training did not get going: $(cat "$tmp/faulted.out")"
"$BED_RSH" h2 'ip link set bed0 down'
for _ in $(seq 1800); do [ -s "$tmp/faulted.end" ] && break; sleep 0.1; done
[ -s "$tmp/faulted.end" ] || fail "the faulted job did not end: $(tail -n 30 "$tmp/faulted.out")"
out=$(grep -v '^\[h.:.\]   #' "$tmp/faulted.out")
[ "$(cat "$tmp/faulted.end")" = 0 ] || fail "the faulted job failed: $out"
grep -q "root cause: host h2 unreachable" <<<"$out" || fail "the root cause is not h2: $out"
grep -q "excluding h2" <<<"$out" || fail "h2 was not excluded: $out"
grep -q "replacing h2 by h4" <<<"$out" || fail "h2 was not replaced by the spare h4: $out"
grep -q "re-placed on h\[1,4,3\]" <<<"$out" || fail "not re-placed on h1, h4 (for h2) and h3: $out"
grep -q "resumed from .*ckpt-step-" <<<"$out" || fail "train_mlp did not resume: $out"
grep -q "^h2	attempt 0	host h2 unreachable" "$BED_SHARED/faulted-job/excluded-hosts" ||
  fail "the exclusion is not in the job folder: $(cat "$BED_SHARED/faulted-job/excluded-hosts")"
# The rank placement of the second attempt, node for node: h2's ranks on h4, every other
# rank where it was.
hosts=$(python3 -c 'import json, sys; print(" ".join(r["host"] for r in json.load(open(sys.argv[1]))["ranks"]))' \
          "$BED_SHARED/faulted-job/placement.json")
[ "$hosts" = "h1 h1 h4 h4 h3 h3" ] || fail "ranks 0-5 of the second attempt are on $hosts"

# The uninterrupted run, with h2 back, on h1-h3.
"$BED_RSH" h2 'ip link set bed0 up'
job clean >"$tmp/clean.out" 2>&1 || fail "the uninterrupted run failed: $(tail -n 30 "$tmp/clean.out")"
want=$(checksum "$tmp/clean.out")
got=$(checksum "$tmp/faulted.out")
[ -n "$want" ] && [ "$want" = "$got" ] ||
  fail "checksums differ: uninterrupted $want, recovered $got"
echo "ok: h2 cut off, excluded, its ranks on h4, resumed; checksum $got as uninterrupted"
