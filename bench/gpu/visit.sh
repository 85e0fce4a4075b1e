#!/usr/bin/env bash
# One GPU visit (issues 4, 6, 7, 9): prioritised stages, each time-boxed, under one wall-clock budget.
# On the GPU machine, from the repository root, with .device/ carried (bench/gpu/prepare.sh made it):
#   run(command="bash bench/gpu/visit.sh", carry=[".device"], timeout_s=600)
# The run tool allows 10 minutes per command and 15 minutes of device time per session (a cold
# start costs 1-2 of them), so the stages get BUDGET=540 s by default and the setup ~15 s more.
# Stages not reached are listed in summary.md; a second call can run them: STAGES="gemm bf16" ...
#
# Stage           estimate  cap   what (issue)
# parity-stgcn        5 s    60   parity --fixture stgcn_small.safetensors --backend gpu (4)
# stgcn-paper        40 s    90   ST-GCN Paper training step, N=32, T=300, M=2, 60 classes: fp32 (4), then bf16 convs (9); --profile: time per op;
#                                 the bf16 convs compiled for 2 blocks per SM vs 1, and the stride-1 products on packed operands (PackedConv,
#                                 default) vs all on the gathering kernels. First: the graph kernels are new since the first visit
# parity-dit          6 s    60   parity --fixture dit_small.safetensors --backend gpu (6)
# bench-paper        45 s   180   bench --config paper: ms/step (batch 256), rows/s, peak memory (6), --profile: time per op (9); rows/s again
#                                 in chunks of 7,680 rows (--chunk-rows 7680; 2,048 is the default)
# gemm-probe         60 s   120   every GEMM kernel (fp32 SIMT with 16-byte and scalar staging, bf16 and tf32 on fp32 operands, packed bf16: 32-bit staging,
#                                 ldmatrix with 8 and with 4 warps, ldmatrix with the per-element epilogue, ldmatrix from ILGPU's
#                                 PTX as written (asm operand slots not lifted), both ldmatrix layouts staged by cp.async, and cp.async staging
#                                 multiplied by Hopper's wgmma with 3 and with 4 stages (-deep: 64 KB of dynamic shared memory), new
#                                 since 2026-11-28 and never run on a GPU: in a second process of their own) vs cuBLAS SGEMM and bf16
#                                 in the same process, 5 shapes,
#                                 host-timed back-to-back launches, each C checked against the first method's, and what the
#                                 driver compiled of each kernel (6, 9); the gemm-packed stage (BenchmarkDotNet) was never
#                                 reached at the first visit
# attention-probe    20 s    60   joint attention, scalar vs register-tiled kernels (GpuOps.TiledAttention), forward and backward at
#                                 512 and 2,048 rows: ms, GB/s of compulsory traffic, speed-up, output differences (6, 9)
# ncu                50 s    90   Nsight Compute on the GEMM kernels of gemm-probe at 17920x3072x768: speed of light, warp
#                                 stall reasons, scheduler and instruction statistics, occupancy, tensor-pipe HMMA (9)
# kernel-checks      40 s    90   the CUDA tests of what no GPU has run yet, in a process of their own ahead of gpu-tests, which the
#                                 H200 visit's cap cut before its last tests: the wgmma GEMMs and convolutions (RunLastOnDevice
#                                 there), the bf16 paths' approximate GELU, the skeleton-row attention, gated residual + LN-modulate
#                                 in one pass (9, 6). All passed at the third visit (H200, c0d932b), in 55 s; list here the tests
#                                 of whatever kernel is new before the next visit
# gpu-tests         150 s   200   GPU kernel tests on CUDA (the simulator fixtures run in CI; the wgmma tests, category RunLastOnDevice, last) (6, 4)
# resources          30 s    60   registers, local memory and blocks per SM of the tensor-core GEMMs and convolutions, the SIMT
#                                 GEMM and convolutions, attention, LN-modulate as this driver compiles them (9)
# bf16              120 s   150   bench --precision bf16: ms/step, rows/s, --profile, then inference and training on packed
#                                 operands for each of the 7 packed kernels, and the packed path profiled on gemm-probe's fastest
#                                 kernel (best_packed; LdMatrix without it) (9); sizes paper-train
# curve              30 s   170   Tiny DiT body (64x2), 3000 steps of batch 64 on synthetic features; compared
#                                 with the CPU tier's run in bench/curves/ (6; passed at the first visit); eval fp32 vs bf16 predictions (9)
# curve-bf16         40 s   120   the curve stage's run with tensor-core GEMMs (>= 2,000 steps) vs its fp32 curve (9)
# kernels            60 s   120   BenchmarkDotNet: attention, LN-modulate, GELU, AdamW vs a copy of their traffic (6)
# gemm               60 s   200   BenchmarkDotNet fp32 GEMM vs cuBLAS SGEMM at the model's shapes, short job (6); measured at the first visit
# paper-train       140 s   330   paper config (cond 2048), 500 iterations of batch 256 on the fastest path (bf16
#                                 tensor cores; fp32 if that fails), capped by --time-limit (7; met at the first visit); eval fp32 vs bf16 (9)
# Order (after the second visit, 2026-11-28, H200): what the open issues still need first: parity, issue 6's fp32 scoring
# (bench-paper), issue 9's bf16 step and scoring (bf16, wgmma kernels included), the tests of the kernels no GPU has run
# yet (kernel-checks: the wgmma tests among them), ST-GCN step, then all kernel tests, the loss curves (issue 9's bf16 curve
# needs the fp32 one);
# gemm-probe (stopped at its cap during its second shape at that visit: the JIT's first compiles), attention-probe, ncu,
# resources and the rest after them.
# gemm-packed (BenchmarkDotNet, 3 shapes x 5 methods, ~65 s) is not in the default list: gemm-probe times the same kernels. summary.md's
# stage table names what was skipped or cut short; if `status` shows budget_left_s >= 240 (a fresh start needs 4
# minutes; a warm machine is kept only 30 s), run e.g.
#   STAGES="gemm paper-train" BUDGET=<budget_left_s - 90> bash bench/gpu/visit.sh
#
# Environment: OUT (results; at most 8 files come back), BUDGET (s), STAGES (names, in order),
# DRY_RUN=1 (print the commands only), BACKEND (gpu; `cpu` or `gpu-sim` for trials on a machine
# without CUDA), TDSM_DIR (where the payload is unpacked), CURVE_ITERS, PAPER_ITERS, PAPER_LIMIT
# (s of training at most), GEMM_RESERVE (s kept for the gemm stage when sizing paper-train).
set -uo pipefail
REPO=$(pwd)
OUT=${OUT:-/tmp/tdsm-out}
BUDGET=${BUDGET:-540}
STAGES=${STAGES:-"parity-dit parity-stgcn bench-paper bf16 kernel-checks stgcn-paper gpu-tests curve curve-bf16 gemm-probe attention-probe ncu resources kernels gemm paper-train"}
DRY_RUN=${DRY_RUN:-0}
BACKEND=${BACKEND:-gpu}
TDSM_DIR=${TDSM_DIR:-/tmp/tdsm}
WORK=${WORK:-/tmp/tdsm-visit}
CURVE_ITERS=${CURVE_ITERS:-3000}
PAPER_ITERS=${PAPER_ITERS:-500}
PAPER_LIMIT=${PAPER_LIMIT:-240}
GEMM_RESERVE=${GEMM_RESERVE:-80}
LOGS=$WORK/logs
export REPO OUT DRY_RUN BACKEND TDSM_DIR WORK LOGS CURVE_ITERS PAPER_ITERS
mkdir -p "$OUT" "$LOGS"
: > "$WORK/stages.tsv"
T0=$(date +%s)

# --- setup (not counted in BUDGET): the .NET runtime and the published apps --------------------
if ! command -v dotnet > /dev/null || [ -f .device/dotnet-rt.tar.xz ]; then
  mkdir -p /tmp/dn && tar -C /tmp/dn -xJf .device/dotnet-rt.tar.xz && export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH
fi
if [ -f .device/payload.tar.xz ]; then
  rm -rf "$TDSM_DIR" && mkdir -p "$TDSM_DIR" && tar -C "$TDSM_DIR" -xJf .device/payload.tar.xz
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 TDSM_SHARED=$TDSM_DIR
# cuBLAS for the GEMM baseline: CUDA 13's, inside the PyTorch environment (see CuBlasLoader.cs).
export TDSM_CUBLAS=${TDSM_CUBLAS:-$(timeout 30 find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name 'libcublas.so.*' ! -name '*Lt*' -print 2> /dev/null | sort | tail -n 1)}
APP="dotnet $TDSM_DIR/app/Tdsm.Trainer.dll"
export APP
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null || echo "no nvidia-smi"; } > "$LOGS/gpu.txt"
cat "$LOGS/gpu.txt"
echo "setup: $(( $(date +%s) - T0 )) s; payload $(cat "$TDSM_DIR/version.txt" 2> /dev/null || echo '(no version.txt)'); cuBLAS ${TDSM_CUBLAS:-not found}"
S0=$(date +%s)

# x CMD...: print a command, run it unless DRY_RUN=1.
x() { echo "+ $*"; [ "$DRY_RUN" = 1 ] || "$@"; }
# or_without VAR WHAT CMD...: x CMD; if it fails, once more with VAR=0, which turns off WHAT (kernels new since the
# first visit, so that a fault in them cannot cost the stage's figures).
or_without() {
  local var=$1 what=$2; shift 2
  x "$@" && return
  echo "failed; again with $var=0 ($what)"
  (export "$var=0"; x "$@")
}
export -f x or_without

# --- stages: each a function run under `timeout` in a child bash ----------------------------------
# Without TDSM_PTXAS: the ptxas register / spill checks (~20 assemblies, ~100 s on the build machine) would not fit the
# stage's cap; the build machine runs them with ptxas 11.8, and the resources stage reports what this driver makes.
st_gpu_tests() { x dotnet "$TDSM_DIR/tests/Tdsm.Tests.Device.dll" Tdsm.Gpu.Tests cuda; }
# The kernels no GPU has run yet (stop 29: the skeleton row's mix, the graph kernels' padded adjacency and staging, the pool;
# stop 30: the packed-C and GELU' fast epilogues on every packed kernel (wgmma included), the attention's bf16 cast and launch bounds, the
# chunked gathers and GELUs, the unrolled column and token sums); the third visit ran the previous list to 16 of 16 passed.
NEW_KERNEL_TESTS=PackedMlpFastEpilogueGivesTheBitsOfTheGeneralOne,PackedGeluGradFastEpilogueGivesTheBitsOfTheGeneralOne,GeluByChunksGivesTheBitsOfGeluByElements,AttentionCastIsUsedOnlyByTheNextProduct,JointAttentionForwardAndBackward,GatherRowsByChunksAndByFloats,LayerNormModulateForwardAndBackward,GatedResidualForwardAndBackward,AdamWGatherAndRowSums,JointAttentionSkeletonRowFromTextIsTheRowOverTheKeysAndValues,GraphAggregateForwardAndBackward,PoolAndItsBackward,DiffusionLossAndScoring
export NEW_KERNEL_TESTS
st_kernel_checks() { x dotnet "$TDSM_DIR/tests/Tdsm.Tests.Device.dll" Tdsm.Gpu.Tests cuda "$NEW_KERNEL_TESTS"; }
st_resources() { x dotnet "$TDSM_DIR/tests/Tdsm.Tests.Device.dll" Tdsm.Gpu.Diagnostics cuda; }
# A fault in the tiled attention costs a rerun without it, not the stage.
st_parity_dit() { x $APP parity --fixture "$TDSM_DIR/fixtures/dit_small.safetensors" --backend "$BACKEND"; }
st_parity_stgcn() { x $APP parity --fixture "$TDSM_DIR/fixtures/stgcn_small.safetensors" --backend "$BACKEND"; }
st_bench_paper() {
  or_without TDSM_SKELETON_ROW_MIX "the skeleton row's mix kernel (last block from the text states)" \
    or_without TDSM_TILED_ATTENTION "the tiled attention kernels" $APP bench --config paper --backend "$BACKEND" --steps 5 --warmup 1 --profile 3 || return
  # Scoring in larger chunks, A/B in the same visit (3 chunks of 7,680 rows instead of 12 of 1,920: the skeleton stream's
  # products of M = 1,920 fill 90-360 blocks of the GPU's 264 slots; ~12 GB of activations instead of ~3).
  echo "--- inference again with --chunk-rows 7680"
  x $APP bench --config paper --backend "$BACKEND" --steps 1 --warmup 0 --chunk-rows 7680 || true
}
st_stgcn_paper() {
  x $APP pretrain-encoder --bench --config paper --n 32 --t 300 --m 2 --classes 60 --steps 5 --backend "$BACKEND" --profile || return
  # Issue 9 (target <= 84 ms): the same step with the convolutions on tensor cores.
  # A fault in the packed weight gradients (new, not yet run on a GPU) costs only them; one in the other packed products all.
  or_without TDSM_PACKED_CONVS "PackedConv: all convolutions on the gathering kernels" \
    or_without TDSM_PACKED_WEIGHT_GRADS "the temporal weight gradients on packed operands" \
    $APP pretrain-encoder --bench --config paper --n 32 --t 300 --m 2 --classes 60 --steps 5 --backend "$BACKEND-bf16" --profile || true
}
st_curve() {
  # The same data and command as bench/curves/README.md's CPU reference run, on $BACKEND.
  x $APP synth-features --out "$WORK/curve" --classes 40 --unseen 5 --train-per-class 50 --test-per-class 10 --dim 256 --text-width 768 --seed 0 || return
  [ "$DRY_RUN" = 1 ] || (cd "$WORK/curve" && sha256sum -c "$REPO/bench/curves/tiny-b64-s0.data.sha256") || echo "WARNING: the synthetic data differ from the CPU run's"
  x $APP train --features "$WORK/curve/features" --text-features "$WORK/curve/text_features.safetensors" --unseen "$WORK/curve/unseen.npy" \
    --out "$WORK/curve-run" --model small --hidden 64 --depth 2 --heads 4 --iterations "$CURVE_ITERS" --batch 64 --lr 1e-3 --warmup 100 --seed 0 --log-every 1 \
    --checkpoint-every 0 --time-limit 120 --backend "$BACKEND" || return
  x cp "$WORK/curve-run/loss.csv" "$OUT/curve_${BACKEND}.csv"
  # For the note: the diffusion term alone and 100-step windows (float32 rounding alone moved those 1.45%).
  x $APP curves --a "$REPO/bench/curves/tiny-b64-s0.cpu.csv" --b "$WORK/curve-run/loss.csv" --column diffusion --window 300 --skip 1 --tolerance 0.02
  x $APP curves --a "$REPO/bench/curves/tiny-b64-s0.cpu.csv" --b "$WORK/curve-run/loss.csv" --window 100 --skip 1 --tolerance 0.02
  # The gate: 300-step windows of the total loss within 2% after the first, about 5x the rounding noise measured
  # between two CPU builds (0.37%), while a path whose diffusion term did not learn (flat near its first window's
  # ~1.0) would sit >= 5% above the CPU run's late windows (0.947); see bench/curves/README.md.
  x $APP curves --a "$REPO/bench/curves/tiny-b64-s0.cpu.csv" --b "$WORK/curve-run/loss.csv" --window 300 --skip 1 --tolerance 0.02
  local verdict=$?   # the stage's status is the gating comparison's
  # The trained model's zero-shot predictions with tensor-core GEMMs against fp32 (issue 9: differing argmins and margins).
  x $APP eval --model "$WORK/curve-run/model.safetensors" --features "$WORK/curve/features" --text-features "$WORK/curve/text_features.safetensors" \
    --unseen "$WORK/curve/unseen.npy" --backend "$BACKEND" --compare "$BACKEND-bf16" || true
  return $verdict
}
probe_verdicts() { # one line per packed ldmatrix or wgmma method in the gemm-probe log: its PackedGemmKernel name, "ok" if it ran
  # at every probed shape with C within 1 % of the probe's reference there (a line's last field: |C - C(ref)| / |C(ref)|;
  # bf16 gives ~1e-3), "bad" if it failed or was off anywhere, and its ms at 17920x3072x768 ABt ("-" when not timed there)
  [ -f "$LOGS/gemm-probe.log" ] || return 0
  awk '($3 ~ /^ldmatrix(-wide)?(-async)?$/ || $3 ~ /^wgmma(-deep)?$/) && NF >= 4 {
         seen[$3] = 1
         if ($4 == "FAILED:" || ($5 == "ms" && !($(NF-1) == "=" && $NF + 0 < 0.01))) bad[$3] = 1
         if ($1 == "17920x3072x768" && $2 == "ABt" && $5 == "ms") t[$3] = $4
       }
       END { for (m in seen) { n = m; sub(/^ldmatrix/, "LdMatrix", n); sub(/^wgmma/, "Wgmma", n); sub(/-deep/, "Deep", n); sub(/-wide/, "Wide", n); sub(/-async/, "Async", n)
                               print n, (m in bad ? "bad" : "ok"), (m in t ? t[m] : "-") } }' "$LOGS/gemm-probe.log"
}
best_packed() { # the packed kernel with the lowest gemm-probe time at 17920x3072x768 ABt among those probe_verdicts calls ok, so
  # that a fast but wrong kernel cannot drive the runs that use it
  probe_verdicts | awk '$2 == "ok" && $3 != "-" { print $3, $1 }' | sort -g | head -n 1 | awk '{ print $2 }'
}
unverified_wgmma() { # the wgmma kernels (PackedGemmKernel names, comma-separated) gemm-probe did not see run correctly at every
  # shape it probed: failed, C off by 1 % or more, or not reached. bench leaves them out (TDSM_BENCH_SKIP_PACKED), since a
  # fault of theirs would cost the bf16 stage's training lines and profile. Nothing when there is no probe log (STAGES without it).
  [ -f "$LOGS/gemm-probe.log" ] || return 0
  probe_verdicts | awk '$2 == "ok" { ok[$1] = 1 }
    END { out = ""; n = split("Wgmma WgmmaDeep", k, " "); for (i = 1; i <= n; i++) if (!(k[i] in ok)) out = out (out == "" ? "" : ",") k[i]; print out }'
}
st_paper_train() {
  # Synthetic features at the paper's widths (C_in 256, cond 2048), the official loop settings, on the fastest
  # path (PAPER_BACKEND, default $BACKEND-bf16 when the app has it); if that run fails, fp32 for the time left.
  x $APP synth-features --out "$WORK/paper" --classes 60 --unseen 5 --train-per-class 100 --test-per-class 20 --dim 256 --text-width 2048 --seed 0 || return
  local backend=${PAPER_BACKEND:-$BACKEND} t0=$SECONDS
  [ -z "${PAPER_BACKEND:-}" ] && has_bf16 && backend=$BACKEND-bf16
  # The packed kernel gemm-probe timed fastest at the forward shape (TDSM_PACKED_GEMM; the app's default otherwise).
  local best; best=$(best_packed)
  if [ -z "${TDSM_PACKED_GEMM:-}" ] && [ -n "$best" ]; then export TDSM_PACKED_GEMM=$best; fi
  echo "paper-train: packed kernel ${TDSM_PACKED_GEMM:-the device default (WgmmaDeep on Hopper, else LdMatrix)}"

  paper_run() { # paper_run BACKEND SECONDS
    echo "paper-train: --backend $1, --time-limit $2 s"
    x $APP train --features "$WORK/paper/features" --text-features "$WORK/paper/text_features.safetensors" --unseen "$WORK/paper/unseen.npy" \
      --out "$WORK/paper-run" --model paper --iterations "$PAPER_ITERS" --batch 256 --lr 1e-4 --warmup 100 --seed 0 --log-every 1 \
      --checkpoint-every 0 --time-limit "$2" --backend "$1"
  }
  if ! paper_run "$backend" "$PAPER_TIME"; then
    [ "$backend" = "$BACKEND" ] && return 1
    local left=$(( PAPER_TIME - (SECONDS - t0) - 30 ))
    [ "$left" -ge 60 ] || { echo "paper-train: $backend failed and $left s is too little for the fp32 fallback"; return 1; }
    echo "paper-train: $backend failed; fp32 fallback"
    backend=$BACKEND; rm -rf "$WORK/paper-run"
    paper_run "$backend" "$left" || return
  fi
  x cp "$WORK/paper-run/loss.csv" "$OUT/paper_loss.csv"
  x cp "$WORK/paper-run/report.json" "$LOGS/paper_report.json"
  x $APP curves --a "$WORK/paper-run/loss.csv" --window 50
  x $APP eval --model "$WORK/paper-run/model.safetensors" --features "$WORK/paper/features" --text-features "$WORK/paper/text_features.safetensors" \
    --unseen "$WORK/paper/unseen.npy" --backend "$BACKEND" --compare "$BACKEND-bf16" || true
}
st_gemm() {
  # fp32 SIMT vs cuBLAS SGEMM at every model shape (issue 6; ~4 s per case: 14 cases); the bf16 kernels are gemm-packed's.
  # Every method (the TF32 pair too) with GEMM_ALL=1.
  local filter=('*GpuGemmBenchmarks.CuBlasSgemm' '*GpuGemmBenchmarks.TdsmGemm')
  [ "${GEMM_ALL:-0}" = 1 ] && filter=('*GpuGemmBenchmarks*')
  x dotnet "$TDSM_DIR/bench/Tdsm.Benchmarks.dll" --filter "${filter[@]}" --warmupCount 1 --iterationCount 3 --iterationTime 100 \
    --artifacts "$WORK/bdn" || return
  [ "$DRY_RUN" = 1 ] || cp "$WORK"/bdn/results/*GpuGemmBenchmarks-report-github.md "$OUT/gemm.md"
}
st_gemm_packed() {
  # Issue 9: the bf16 kernels on operands packed as bf16 pairs (KernelPacked, KernelLdMatrix) against
  # cuBLAS bf16 and the fp32-operand kernel (bounded for 2 blocks per SM, the default, and for 1: OneBlockPerSm) in
  # the same run; a process of its own, so that a fault in these experimental kernels cannot cost the gemm stage's numbers.
  # Three shapes (a forward, the long-K weight gradient, 8192³) x 5 methods, ~4 s each, so that it fits its cap.
  TDSM_GEMM_SHAPES=${GEMM_PACKED_SHAPES:-"17920x3072x768 ABt;2304x768x17920 AtB;8192x8192x8192 ABt"} \
  x dotnet "$TDSM_DIR/bench/Tdsm.Benchmarks.dll" --filter '*GpuGemmBenchmarks.CuBlasBf16Gemm' '*GpuGemmBenchmarks.TdsmTensorCoreBf16*' \
    --warmupCount 1 --iterationCount 3 --iterationTime 100 --artifacts "$WORK/bdn-packed" || return
  [ "$DRY_RUN" = 1 ] || cp "$WORK"/bdn-packed/results/*GpuGemmBenchmarks-report-github.md "$OUT/gemm-packed.md"
}
PROBE_SHAPES=${PROBE_SHAPES:-"17920x3072x768 ABt;17920x768x3072 AB;2304x768x17920 AtB;512x4608x768 ABt;8192x8192x8192 ABt"}
export PROBE_SHAPES
st_gemm_probe() {
  # Issues 6 and 9: every GEMM kernel against cuBLAS SGEMM / bf16 in one process (Tdsm.Benchmarks gemm-probe), shape by
  # shape. The wgmma kernels, never run on a GPU, in a second process with the cuBLAS baselines again (sgemm first: the
  # reference its C checks use): a fault of theirs at the first shape would otherwise cost every later shape's figures.
  local rc=0
  x dotnet "$TDSM_DIR/bench/Tdsm.Benchmarks.dll" gemm-probe --shapes "$PROBE_SHAPES" \
    --methods sgemm,fp32,fp32-scalar,fp32-vector,cublas-bf16,bf16,bf16-1sm,tf32,packed,ldmatrix,ldmatrix-general,ldmatrix-unlifted,ldmatrix-wide,ldmatrix-async,ldmatrix-wide-async --reps 20 --rounds 3 || rc=$?
  x dotnet "$TDSM_DIR/bench/Tdsm.Benchmarks.dll" gemm-probe --shapes "$PROBE_SHAPES" \
    --methods sgemm,cublas-bf16,wgmma,wgmma-deep --reps 20 --rounds 3 || rc=$?
  return $rc
}
st_attention_probe() {
  # Issues 6 and 9: the register-tiled joint attention (the default since 2026-11-27) against the scalar kernels.
  x dotnet "$TDSM_DIR/bench/Tdsm.Benchmarks.dll" attention-probe --rows 512,2048 --reps 20 --rounds 3
}
st_ncu() {
  # Issue 9: why the tensor-core GEMMs run where they do. Both launches each of the four ldmatrix kernels, the packed,
  # fp32-operand bf16 and fp32 SIMT kernels and the wgmma kernel (last: never run before, a fault would poison the process's
  # context) (ILGPU names them Kernel_<method>) at a forward shape, with the sections that say what
  # bounds a kernel (throughputs, stall reasons, issue slots, occupancy) and the tensor-pipe counters.
  local ncu
  ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -n 1)
  if [ -z "$ncu" ]; then echo "SKIP: ncu not found"; return 0; fi
  # Only the sections and metrics this ncu knows (a wrong name aborts the whole profile).
  local sections="" metrics="" known s m
  known=$("$ncu" --list-sections 2> /dev/null)
  for s in SpeedOfLight ComputeWorkloadAnalysis MemoryWorkloadAnalysis Occupancy LaunchStats SchedulerStats WarpStateStats InstructionStats; do
    grep -qw "$s" <<< "$known" && sections="$sections --section $s"
  done
  known=$("$ncu" --query-metrics 2> /dev/null | awk '{print $1}')
  # and per stall reason, the warps stalled per issued instruction (what the warp state section only charts)
  local stalls=""
  for r in long_scoreboard short_scoreboard barrier mio_throttle lg_throttle math_pipe_throttle wait not_selected selected dispatch_stall no_instruction branch_resolving; do
    stalls="$stalls smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
  done
  # hmma: mma.sync; gmma: wgmma (Hopper's warpgroup MMA)
  for m in sm__inst_executed_pipe_tensor_op_hmma.sum sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active sm__inst_executed_pipe_tensor_op_gmma.sum sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active smsp__inst_executed_op_local_ld.sum smsp__inst_executed_op_local_st.sum $stalls; do
    grep -qx "${m%%.*}" <<< "$known" && metrics="$metrics,$m"
  done
  echo "ncu: $ncu; sections:${sections:- none}; metrics: ${metrics#,}"
  x "$ncu" $sections ${metrics:+--metrics "${metrics#,}"} --kernel-name regex:'^Kernel_Kernel' --launch-skip 0 --launch-count 18 \
    dotnet "$TDSM_DIR/bench/Tdsm.Benchmarks.dll" gemm-probe --shapes "17920x3072x768 ABt" --methods ldmatrix,ldmatrix-async,ldmatrix-wide,ldmatrix-wide-async,packed,bf16,fp32,wgmma,wgmma-deep --reps 1 --rounds 1
}
st_curve_bf16() {
  # Issue 9: the same 64x2 run (same schedule) with tensor-core GEMMs against this visit's fp32 GPU curve, over the
  # steps both reached (>= 2,000 wanted).
  [ -f "$WORK/curve-run/loss.csv" ] || [ "$DRY_RUN" = 1 ] || { echo "SKIP: no fp32 curve from the curve stage"; return 0; }
  x $APP train --features "$WORK/curve/features" --text-features "$WORK/curve/text_features.safetensors" --unseen "$WORK/curve/unseen.npy" \
    --out "$WORK/curve-run-bf16" --model small --hidden 64 --depth 2 --heads 4 --iterations "$CURVE_ITERS" --batch 64 --lr 1e-3 --warmup 100 --seed 0 --log-every 1 \
    --checkpoint-every 0 --time-limit 90 --backend "$BACKEND-bf16" || return
  x $APP curves --a "$WORK/curve-run/loss.csv" --b "$WORK/curve-run-bf16/loss.csv" --window 100 --skip 1 --tolerance 0.02
  x $APP curves --a "$WORK/curve-run/loss.csv" --b "$WORK/curve-run-bf16/loss.csv" --window 300 --skip 1 --tolerance 0.02   # the gate, as in st_curve
}
st_kernels() {
  # The non-GEMM kernel families at the paper shapes against a copy of their compulsory traffic (issue 6).
  x dotnet "$TDSM_DIR/bench/Tdsm.Benchmarks.dll" --filter '*GpuKernelBenchmarks*' --warmupCount 1 --iterationCount 3 --iterationTime 100 \
    --artifacts "$WORK/bdn-kernels" || return
  [ "$DRY_RUN" = 1 ] || cp "$WORK"/bdn-kernels/results/*GpuKernelBenchmarks-report-github.md "$OUT/kernels.md"
}
has_bf16() { $APP bench --help 2> /dev/null | grep -q -- '--precision'; }
st_bf16() {
  if ! has_bf16; then echo "SKIP: this app's bench has no --precision option (tensor-core path not published)"; return 0; fi
  # --profile only where the published app has it (a payload older than the option would stop at it).
  local profile=(); $APP bench --help 2> /dev/null | grep -q -- '--profile' && profile=(--profile 3)
  # The packed path's profile on the kernel gemm-probe timed fastest (TDSM_PACKED_GEMM; LdMatrix without a probe).
  local best; best=$(best_packed)
  if [ -z "${TDSM_PACKED_GEMM:-}" ] && [ -n "$best" ]; then export TDSM_PACKED_GEMM=$best; fi
  echo "bf16: packed path profiled on ${TDSM_PACKED_GEMM:-the device default (WgmmaDeep on Hopper, else LdMatrix)}"
  local skip; skip=$(unverified_wgmma)
  if [ -z "${TDSM_BENCH_SKIP_PACKED:-}" ] && [ -n "$skip" ]; then export TDSM_BENCH_SKIP_PACKED=$skip; fi
  echo "bf16: packed kernels left out (not seen correct by gemm-probe): ${TDSM_BENCH_SKIP_PACKED:-none}"
  x $APP bench --config paper --backend "$BACKEND" --precision bf16 --steps 5 --warmup 1 "${profile[@]}"
}
export -f probe_verdicts best_packed unverified_wgmma st_gpu_tests st_kernel_checks st_resources st_parity_dit st_parity_stgcn st_bench_paper st_stgcn_paper st_curve st_paper_train st_gemm st_gemm_packed st_gemm_probe st_attention_probe st_kernels st_curve_bf16 has_bf16 st_bf16 st_ncu

cap() { case $1 in gpu-tests) echo 200;; kernel-checks) echo 90;; bf16) echo 150;; ncu) echo 90;; parity-*|resources|attention-probe) echo 60;; bench-paper) echo 180;; stgcn-paper) echo 90;; curve) echo 170;; paper-train) echo 330;; gemm) echo 200;; *) echo 120;; esac; }
least() { case $1 in parity-*) echo 20;; paper-train) echo 90;; gemm) echo 60;; *) echo 30;; esac; }

# --- summary.md: every number the issues need, rebuilt after each stage -------------------------
section() { # section TITLE LOG GREP-PATTERN [LINES]
  echo; echo "### $1"; echo
  if [ -f "$LOGS/$2.log" ]; then echo '```'; grep -E "$3" "$LOGS/$2.log" | cut -c1-300 | tail -n "${4:-40}"; echo '```'; else echo "(not run)"; fi
}
summarize() {
  {
    echo "# GPU visit summary"
    echo
    echo "- card: $(cat "$LOGS/gpu.txt")"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); payload: $(cat "$TDSM_DIR/version.txt" 2> /dev/null || echo unknown); backend: $BACKEND"
    echo "- budget: $BUDGET s for the stages; used $(( $(date +%s) - S0 )) s (setup before that: $(( S0 - T0 )) s)"
    echo
    echo "| stage | status | seconds | limit |"
    echo "| --- | --- | --- | --- |"
    awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$WORK/stages.tsv"
    section "Tests of kernels new on the GPU, kernel-checks (issues 9, 6)" kernel-checks '.' 60
    section "GPU kernel tests (issue 6, 4)" gpu-tests '^FAIL|^SKIP|passed, .* failed'
    section "DiT parity, dit_small.safetensors (issue 6)" parity-dit '.'
    section "ST-GCN parity, stgcn_small.safetensors (issue 4)" parity-stgcn '.'
    section "bench --config paper (issue 6: step <= 390 ms, >= 6,238 rows/s, <= 17.4 GiB)" bench-paper '^bench:|train step|^inference \(|peak|^joint attention|^--- '
    section "Where the fp32 paper step and inference spend their time (bench --profile 3; issue 9)" bench-paper '(step|inference) profile|^  (op |[A-Z(])|by op family' 60
    section "ST-GCN Paper training step, N=32 T=300 (issue 4: <= 225 ms fp32; issue 9: <= 84 ms bf16)" stgcn-paper 'stgcn train step(:| on| with)|^PTX operand slots'
    section "Where the ST-GCN step spends its time, fp32 then bf16 convolutions (--profile; issue 9)" stgcn-paper 'step profile|^  (op |[A-Z(])|by op family' 60
    section "Loss curve, DiT 64x2, GPU vs CPU tier, same seed and command (issue 6); bf16 vs fp32 predictions (issue 9)" curve '^train: [0-9]+ iter|time limit|WARNING|OK$|FAILED|^curves:|^ +B = |^[AB]: |max \|rel\||verdict|^eval:|^  sample'
    section "Paper-config training, cond 2048 (issue 7: >= 500 iterations); bf16 vs fp32 predictions (issue 9)" paper-train '^paper-train:|^train: |time limit|zero-shot top-1|^ *[0-9]+ +[0-9]+-[0-9]+ |^A: |^eval:|^  sample'
    section "GEMM vs cuBLAS (issue 6: >= 50% of cuBLAS)" gemm '^\| *(Method|CuBlas|Tdsm|-)|^\| '
    section "bf16 kernels on pre-packed bf16 operands vs cuBLAS bf16 (issue 9)" gemm-packed '^\| *(Method|CuBlas|Tdsm|-)|^\| '
    section "Every GEMM kernel vs cuBLAS SGEMM and bf16, gemm-probe (issues 6, 9)" gemm-probe '^gemm-probe|^  [0-9a-z]' 160
    section "Joint attention, scalar vs tiled kernels, attention-probe (issues 6, 9)" attention-probe '^attention-probe|^  rows' 20
    section "Registers, local memory and blocks per SM as the driver compiled each kernel (issue 9)" resources '^resources |^FAIL|^SKIP|passed, .* failed' 50
    section "bf16 bench (issue 9)" bf16 'SKIP|train step|^inference \(|peak|^PTX operand slots|^bf16: packed'
    section "Where the bf16 paper step and inference spend their time (issue 9)" bf16 '(step|inference) profile|^  (op |[A-Z(])|by op family' 60
    section "bf16 loss curve vs this visit's fp32 GPU curve (issue 9)" curve-bf16 '^train: [0-9]+ iter|time limit|SKIP|^curves:|^[AB]: |verdict'
    section "Kernel families vs copy of their compulsory traffic (issue 6)" kernels '^\| *(Method|Copy|Kernel|-)|^\| '
    section "Nsight Compute on the GEMM kernels (issue 9)" ncu 'SKIP|^ncu|==PROF==|==ERROR==|Kernel_Kernel|Duration|Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issue Slots|Issued Ipc|Warp Cycles Per Issued|Executed Instructions  |issue_stalled|hmma|gmma|local_(ld|st)|Block Limit' 240
  } > "$OUT/summary.md"
  tar -C "$WORK" -czf "$OUT/logs.tar.gz" logs 2> /dev/null
}

# --- the stage loop ---------------------------------------------------------------------------------
for name in $STAGES; do
  used=$(( $(date +%s) - S0 )); left=$(( BUDGET - used ))
  limit=$(cap "$name"); [ "$left" -lt "$limit" ] && limit=$left
  if [ "$name" = paper-train ]; then
    # Train for what the budget allows after ~60 s for data, kernel compilation, the checkpoint and the
    # zero-shot evaluation, and GEMM_RESERVE s when the gemm stage comes later; at most PAPER_LIMIT s.
    reserve=0; [[ " ${STAGES#*paper-train} " == *" gemm "* ]] && reserve=$GEMM_RESERVE
    PAPER_TIME=$(( left - reserve - 60 ))
    # The bf16 bench sizes the bf16 run; the fp32 bench when the bf16 stage did not run.
    med=$(cat "$LOGS/bf16.log" "$LOGS/bench-paper.log" 2> /dev/null | grep -oE 'train step .*median [0-9.]+' | head -n 1 | grep -oE '[0-9.]+$')
    if [ -n "$med" ]; then
      # Issue 7 needs all PAPER_ITERS iterations: when they need more than the share above, take it from the
      # gemm stage's reserve down to that stage's minimum (60 s). 10% margin and 15 s for the first step.
      need=$(awk -v m="$med" -v n="$PAPER_ITERS" 'BEGIN {printf "%.0f", m * n / 1000 * 1.1 + 15}')
      floor=0; [ "$reserve" -gt 0 ] && floor=60
      most=$(( left - floor - 60 )); [ "$need" -lt "$most" ] && most=$need
      [ "$most" -gt "$PAPER_TIME" ] && PAPER_TIME=$most
    fi
    [ "$PAPER_TIME" -gt "$PAPER_LIMIT" ] && PAPER_TIME=$PAPER_LIMIT
    export PAPER_TIME
    [ -n "$med" ] && echo "paper-train: bench median $med ms/step predicts $(awk -v m="$med" -v n="$PAPER_ITERS" 'BEGIN {printf "%.0f", m * n / 1000}') s for $PAPER_ITERS iterations; time limit $PAPER_TIME s"
    [ "$PAPER_TIME" -lt 30 ] && limit=0 || limit=$(( PAPER_TIME + 90 < left ? PAPER_TIME + 90 : left ))
  fi
  if [ "$limit" -lt "$(least "$name")" ]; then
    echo "== $name: SKIPPED (budget: $left s left)"
    printf '%s\tskipped (budget)\t0\t%s\n' "$name" "$limit" >> "$WORK/stages.tsv"
    continue
  fi
  fn="st_${name//-/_}"
  echo "== $name (limit $limit s, $left s of the budget left)"
  t=$(date +%s)
  timeout -k 10 "$limit" bash -c "$fn" 2>&1 | tee "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  secs=$(( $(date +%s) - t ))
  case $rc in 0) status=ok;; 124|137) status="TIMEOUT";; *) status="exit $rc";; esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "$limit" >> "$WORK/stages.tsv"
  summarize
done
summarize
echo
cat "$OUT/summary.md"
