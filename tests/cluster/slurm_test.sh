#!/usr/bin/env bash
# haein under a real Slurm (issue 21) on four bed hosts: slurmctld on h1, the head and login
# node, one slurmd per host, topology.conf from `haein topo convert --to slurm`. Every
# command runs on h1 as a user logged in there would.
#   - the srun backend with 8 ranks per node, and with uneven counts, inside salloc; a RANK
#     exported in the submitting shell changes nothing;
#   - the placement uses only the allocation's nodes; more ranks than it holds is an error
#     before any step; a job placed while another job holds h1-h2 lands on h3-h4, inside
#     salloc with a cluster file, and outside any allocation with --cluster slurm: (Slurm's
#     live state; srun allocates the placed nodes);
#   - haein run inside a running step is refused, naming the step;
#   - train_mlp under plain `srun --mpi=pmix -n 5` on two nodes (no --ntasks-per-node);
#   - scancel --signal=TERM of the job: each rank's SIGTERM handler runs, haein run ends 143
#     without restarting; scancel of the allocation ends the restart loop with 143; kill -9
#     of haein run leaves no step and no rank;
#   - `haein topo show` reads what `scontrol show topology` prints;
#   - acceptance: `sbatch examples/launch/sbatch.sh` trains train_mlp on 2 nodes x 4 ranks,
#     a rank killed mid-run is restarted, and the job resumes to the parameter checksum of
#     an uninterrupted run.
#   slurm_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

# shellcheck source=haein_bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/haein_bed.sh"
source_dir=$(cd "${2:?source dir}" && pwd)
reason=$(HAEIN=/bin/true "$(dirname "${BASH_SOURCE[0]}")/slurm.sh" check-tools 2>&1) || {
  echo "SKIP: $reason"
  exit 77
}
haein_bed "${1:?build dir}" 4 "$source_dir"
HAEIN=$haein "$here/slurm.sh" up "$dir" >/dev/null

# on_h1 SCRIPT: runs the bash SCRIPT on h1 in the shared folder, with haein and train_mlp
# in PATH and Open MPI on the bed's network; prints its output, returns its exit code.
on_h1() {
  local file
  file=$(mktemp -p "$BED_SHARED" case-XXXXXX.sh)
  {
    echo "cd $(printf %q "$BED_SHARED")"
    echo "export PATH=$(printf %q "$build/launcher:$build/examples"):/usr/bin:/bin"
    echo "export OMPI_MCA_btl_tcp_if_include=$BED_SUBNET OMPI_MCA_oob_tcp_if_include=$BED_SUBNET"
    echo "export BED_DIR=$(printf %q "$dir")"
    cat
  } >"$file"
  "$BED_RSH" h1 "bash $(printf %q "$file")"
}
cat >"$BED_SHARED/probe.sh" <<'EOF'
#!/bin/bash
echo "probe rank=$RANK host=$(hostname) local=$LOCAL_RANK/$LOCAL_WORLD_SIZE procid=$SLURM_PROCID"
EOF
cat >"$BED_SHARED/trainer.sh" <<'EOF'
#!/bin/bash
# A trainer that saves on SIGTERM.
# Saving takes longer on higher ranks: the first to finish must not cut the others short.
trap 'echo "rank $RANK: SIGTERM, saving"; sleep $((RANK * 4 / 10)).$((RANK * 4 % 10)); echo saved >"$1/saved-$RANK"; exit 143' TERM
echo "rank $RANK: training"
for i in $(seq 600); do sleep 0.1; done
EOF
chmod +x "$BED_SHARED/probe.sh" "$BED_SHARED/trainer.sh"
count() { grep -c "$1" <<<"$2" || true; }
ok() { echo "ok (${SECONDS} s): $*"; }

# 1. 8 ranks per node, and 5 ranks over 2 nodes, with a stale RANK in the shell.
out=$(on_h1 2>&1 <<'EOF'
export RANK=3
salloc -N 2 -w h[1-2] --ntasks-per-node=8 haein run -n 16 -- ./probe.sh
EOF
) || fail "16 ranks on 2 nodes failed: $out"
grep -q "(srun backend, in Slurm job [0-9]*, --mpi=pmix)" <<<"$out" || fail "no srun backend: $out"
[ "$(count "probe .* host=h1 local=[0-7]/8" "$out")" = 8 ] || fail "not 8 ranks on h1: $out"
[ "$(count "probe .* host=h2 local=[0-7]/8" "$out")" = 8 ] || fail "not 8 ranks on h2: $out"
for rank in $(seq 0 15); do
  grep -q "probe rank=$rank .* procid=$rank$" <<<"$out" || fail "rank $rank missing or wrong: $out"
done
ok "16 ranks, 8 on each of h1 and h2, each its own RANK despite RANK=3 in the shell"
out=$(on_h1 2>&1 <<'EOF'
salloc -N 2 -w h[3-4] -n 5 haein run -n 5 -- ./probe.sh
EOF
) || fail "5 ranks on 2 nodes failed: $out"
[ "$(count "probe .* host=h3 local=./4" "$out")" = 4 ] || fail "not 4 ranks on h3: $out"
[ "$(count "probe .* host=h4 local=0/1" "$out")" = 1 ] || fail "not 1 rank on h4: $out"
ok "5 ranks as 4 on h3 and 1 on h4"

# 2. Only the allocation's nodes; more than it holds fails before any step.
rc=0
out=$(on_h1 2>&1 <<'EOF'
salloc -N 2 -w h[3-4] --ntasks-per-node=2 bash -c 'haein run -n 6 -- ./probe.sh; echo "exit $?"; squeue -h -s -j $SLURM_JOB_ID | wc -l | sed "s/^/steps /"'
EOF
) || rc=$?
grep -q "6 ranks but the free nodes have 4 slots (h3: 2, h4: 2)" <<<"$out" || fail "no clear error for 6 ranks in 4 slots: $out"
grep -q "^exit 2$" <<<"$out" || fail "haein run did not exit 2: $out"
grep -q "^steps 0$" <<<"$out" || fail "a step ran: $out"
ok "6 ranks in an allocation of 4 CPUs: an error before any step"
holder=$(on_h1 <<<'sbatch --parsable -N 2 -w h[1-2] --exclusive -o /dev/null --wrap "sleep 300"')
for _ in $(seq 100); do
  on_h1 <<<'squeue -h -t R -o %N' 2>/dev/null | grep -q "h\[1-2\]" && break
  sleep 0.2
done
out=$(on_h1 2>&1 <<'EOF'
salloc -N 2 --ntasks-per-node=2 haein run -c "$BED_DIR/slurm/cluster.yaml" -n 4 -- ./probe.sh
EOF
) || fail "a job beside another failed: $out"
[ "$(count "probe .* host=h[34] " "$out")" = 4 ] || fail "the job did not land on h3-h4: $out"
# Slurm's live state instead of a busy file: haein plan, and haein run outside an allocation
# (srun then allocates the placed nodes itself).
out=$(on_h1 2>&1 <<'EOF'
haein plan --cluster slurm: -g 12
haein run --cluster slurm: -n 12 -- ./probe.sh
haein run --cluster slurm:bed -n 2 --dry-run -- ./probe.sh
EOF
) || fail "--cluster slurm: failed: $out"
grep -q "placed 12 ranks on 2 nodes (h\[3-4\]) across 1 leaf switch of cluster 'slurm'" <<<"$out" ||
  fail "haein plan --cluster slurm: did not avoid h1-h2: $out"
grep -q "12 ranks on h\[3-4\] (srun backend, --mpi=pmix)" <<<"$out" || fail "run --cluster slurm: $out"
[ "$(count "probe .* host=h[34] " "$out")" = 12 ] || fail "not 12 ranks on h3-h4: $out"
grep -q "srun .* --mpi=pmix --partition=bed --export=ALL" <<<"$out" ||
  fail "slurm:bed did not ask srun for partition bed: $out"
on_h1 <<<"scancel $holder" >/dev/null
ok "with h1-h2 held by another job, jobs landed on h3-h4 (cluster file in salloc; --cluster slurm: outside)"

# 3. Inside a running step: refused.
rc=0
out=$(on_h1 2>&1 <<'EOF'
srun -N 1 -n 1 haein run -n 1 -- true
EOF
) || rc=$?
[ "$rc" != 0 ] && grep -q "haein run is running inside Slurm step [0-9]*\.0 (started by srun)" <<<"$out" ||
  fail "haein run inside a step was not refused (exit $rc): $out"
ok "haein run inside a step: refused with a clear error"

# 4. Plain srun of an MPI trainer, uneven nodes, no --ntasks-per-node.
out=$(on_h1 2>&1 <<'EOF'
timeout 120 srun --mpi=pmix -N 2 -n 5 train_mlp --hidden 32 --global-batch 100 \
  --train-samples 4096 --test-samples 1024 --log-every 1000 --eval-every 0 --no-plot --steps 20 \
  --checkpoint-every 0 --out plain-srun
EOF
) || fail "train_mlp under plain srun failed: $out"
grep -q "train_mlp: 5 ranks" <<<"$out" || fail "train_mlp did not see 5 ranks: $out"
grep -q "final: step 20" <<<"$out" || fail "train_mlp did not finish: $out"
ok "train_mlp under srun --mpi=pmix -N 2 -n 5"
# The site's or the user's MPI type wins over haein's pmix (srun reads SLURM_MPI_TYPE).
out=$(on_h1 2>&1 <<'EOF'
export SLURM_MPI_TYPE=pmix
salloc -N 2 -w h[1-2] --ntasks-per-node=2 haein run -n 4 -- train_mlp --hidden 32 \
  --global-batch 96 --train-samples 4096 --test-samples 1024 --log-every 1000 --eval-every 0 \
  --no-plot --steps 20 --checkpoint-every 0 --out mpi-type
EOF
) || fail "haein run with SLURM_MPI_TYPE=pmix failed: $out"
grep -q "4 ranks on h\[1-2\] (srun backend, in Slurm job [0-9]*); placement" <<<"$out" ||
  fail "haein passed its own --mpi over SLURM_MPI_TYPE: $out"
grep -q "train_mlp: 4 ranks" <<<"$out" || fail "train_mlp did not see 4 ranks: $out"
ok "SLURM_MPI_TYPE=pmix: no --mpi from haein, train_mlp on 4 ranks"

# 5. A graceful stop through Slurm, and a cancelled allocation.
out=$(on_h1 2>&1 <<'EOF'
mkdir -p stop1
(salloc -N 2 -w h[1-2] --ntasks-per-node=2 haein run -n 4 --max-restarts 2 -- ./trainer.sh "$PWD/stop1" >stop1/out 2>&1; echo "exit $?" >>stop1/out) &
for i in $(seq 100); do [ "$(grep -c training stop1/out 2>/dev/null)" = 4 ] && break; sleep 0.2; done
scancel --signal=TERM "$(squeue -h -o %i | head -n 1)"
wait
cat stop1/out
ls stop1
EOF
) || fail "scancel --signal case failed: $out"
grep -q "^exit 143$" <<<"$out" || fail "scancel --signal=TERM: haein run did not end 143: $out"
grep -q "job stopped (SIGTERM reached the ranks from outside haein" <<<"$out" || fail "not reported as a stop: $out"
grep -q "restarting" <<<"$out" && fail "restarted after a stop: $out"
[ "$(count "^saved-" "$out")" = 4 ] || fail "not every rank's SIGTERM handler ran: $out"
ok "scancel --signal=TERM: 4 SIGTERM handlers ran, exit 143, no restart"
out=$(on_h1 2>&1 <<'EOF'
mkdir -p stop2
(salloc -N 2 -w h[1-2] --ntasks-per-node=2 haein run -n 4 --max-restarts 2 -- ./trainer.sh "$PWD/stop2" >stop2/out 2>&1) &
for i in $(seq 100); do [ "$(grep -c training stop2/out 2>/dev/null)" = 4 ] && break; sleep 0.2; done
scancel "$(squeue -h -o %i | head -n 1)"
for i in $(seq 150); do grep -q "haein run: job" stop2/out && break; sleep 0.2; done
cat stop2/out
EOF
) || fail "cancelled allocation case failed: $out"
grep -q "haein run: job stopped (.*); exit code 143" <<<"$out" || fail "cancel: no stop with 143: $out"
grep -q "restarting" <<<"$out" && fail "restarted into a cancelled job: $out"
ok "scancel of the allocation: exit 143, no restart"
# A hang found by the heartbeat: the step is stopped through Slurm too, gracefully.
rc=0
out=$(on_h1 2>&1 <<'EOF'
mkdir -p hang
salloc -N 2 -w h[1-2] --ntasks-per-node=1 haein run -n 2 --heartbeat-timeout 2 -- ./trainer.sh "$PWD/hang"
echo "exit $?"
ls hang
EOF
) || rc=$?
grep -q "^exit 124$" <<<"$out" || fail "a hang did not end with 124: $out"
grep -q "hung: no heartbeat" <<<"$out" || fail "the hang was not named: $out"
[ "$(count "^saved-" "$out")" = 2 ] || fail "the ranks' SIGTERM handlers did not run on a hang: $out"
ok "a heartbeat hang under srun: exit 124, both ranks' SIGTERM handlers ran"

# haein run killed outright (kill -9): srun, told by the kernel, ends the step on every node.
out=$(on_h1 2>&1 <<'EOF'
(salloc -N 2 -w h[1-2] --ntasks-per-node=2 haein run -n 4 -- sleep 300 >kill9.out 2>&1 &)
for i in $(seq 100); do squeue -h -s -o %i | grep -q '\.0$' && [ "$(pgrep -c -x sleep)" -ge 2 ] && break; sleep 0.2; done
sleep 1
pkill -KILL -f '^haein run'
for i in $(seq 100); do squeue -h -s -o %i | grep -q '\.0$' || break; sleep 0.2; done
squeue -h -s -o 'step %i'
EOF
) || fail "kill -9 case failed: $out"
grep -q "^step" <<<"$out" && fail "the step outlived haein run: $out"
for host in h1 h2; do
  left=$("$BED_RSH" "$host" 'pgrep -a -x sleep | grep -v "sleep 3600" || true')
  [ -z "$left" ] || fail "after kill -9 of haein run, left on $host: $left"
done
ok "kill -9 of haein run: the srun step ended, no rank left on h1 or h2"

# 6. scontrol show topology, read back.
out=$(on_h1 2>&1 <<'EOF'
scontrol show topology >scontrol-topology.txt
haein topo show scontrol-topology.txt
EOF
) || fail "topo show of scontrol's topology failed: $out"
grep -q "switches: leaf 2 \[leaf\[1-2\]\] spine 1 \[spine\]" <<<"$out" || fail "topo show: $out"
ok "haein topo show reads scontrol show topology"

# 7. Acceptance: the sbatch example, a rank killed mid-run, resumed to the uninterrupted
# run's checksum.
train_args="--hidden 64,64 --train-samples 8192 --test-samples 2048 --log-every 10 --eval-every 0 --no-plot"
out=$(on_h1 2>&1 <<EOF
export HAEIN=haein OUT=\$PWD/whole STEPS=400 CHECKPOINT_EVERY=100
job=\$(sbatch --parsable -N 2 --ntasks-per-node=4 -o whole.out $(printf %q "$source_dir/examples/launch/sbatch.sh") $train_args)
for i in \$(seq 900); do squeue -h -j "\$job" 2>/dev/null | grep -q . || break; sleep 0.2; done
cat whole.out
EOF
) || fail "uninterrupted sbatch run failed: $out"
whole=$(grep -o "parameter checksum [0-9a-f]*" <<<"$out" | tail -n 1)
[ -n "$whole" ] || fail "no checksum from the uninterrupted run: $out"
grep -q "8 ranks on h\[[0-9-]*\] (srun backend" <<<"$out" || fail "not 8 ranks through srun: $out"
out=$(on_h1 2>&1 <<EOF
export HAEIN=haein OUT=\$PWD/faulted STEPS=400 CHECKPOINT_EVERY=100
job=\$(sbatch --parsable -N 2 --ntasks-per-node=4 -o faulted.out $(printf %q "$source_dir/examples/launch/sbatch.sh") $train_args)
for i in \$(seq 600); do grep -q "step .* 150/" faulted.out 2>/dev/null && break; sleep 0.05; done
$(printf %q "$BED_RSH") h2 'pkill -KILL -o -x train_mlp'
for i in \$(seq 900); do squeue -h -j "\$job" 2>/dev/null | grep -q . || break; sleep 0.2; done
cat faulted.out
EOF
) || fail "faulted sbatch run failed: $out"
grep -q "restarting the job in 0.5 s (restart 1 of 2)" <<<"$out" || fail "no restart after the kill: $out"
grep -q "resumed from .*ckpt-step-00000[1-3]00" <<<"$out" || fail "did not resume from a checkpoint: $out"
grep -q "all 8 ranks finished .* after 1 restart" <<<"$out" || fail "did not finish: $out"
faulted=$(grep -o "parameter checksum [0-9a-f]*" <<<"$out" | tail -n 1)
[ "$faulted" = "$whole" ] || fail "resumed run ends with $faulted, uninterrupted with $whole: $out"
ok "sbatch example, 2 nodes x 4 ranks, a rank killed after step 150, resumed: $faulted"
