#!/usr/bin/env bash
# On the GPU machine (run from the repository root with .device/ carried, $OUT set by the run tool):
# GPU kernel tests, fixture parity on the GPU tier, the end-to-end bench at the paper config and the
# GEMM microbenchmarks against cuBLAS. Everything it prints is also written under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/tdsm-out}
mkdir -p "$OUT" /tmp/dn
tar -C /tmp/dn -xJf .device/dotnet-rt.tar.xz
mkdir -p /tmp/tdsm && tar -C /tmp/tdsm -xJf .device/payload.tar.xz
export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
export TDSM_SHARED=/tmp/tdsm
export TDSM_CUBLAS=${TDSM_CUBLAS:-$(find / -name 'libcublas.so.*' -not -name '*Lt*' 2>/dev/null | sort | tail -n 1)}
step() { echo "== $1"; shift; timeout "${LIMIT:-300}" "$@" 2>&1 | tee -a "$OUT/visit.log"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
step "gpu tests" dotnet /tmp/tdsm/tests/Tdsm.Tests.Device.dll Tdsm.Gpu.Tests
step "parity gpu" dotnet /tmp/tdsm/app/Tdsm.Trainer.dll parity --fixture /tmp/tdsm/fixtures/dit_small.safetensors --backend gpu
step "bench paper gpu" dotnet /tmp/tdsm/app/Tdsm.Trainer.dll bench --config paper --backend gpu --steps ${STEPS:-10}
if [ "${GEMM:-1}" = 1 ]; then
  step "gemm vs cublas ($TDSM_CUBLAS)" dotnet /tmp/tdsm/bench/Tdsm.Benchmarks.dll --filter '*GpuGemmBenchmarks*' --artifacts "$OUT/bdn"
fi
grep -E "passed|parity:|train step|inference|peak|TdsmGemm|CuBlasSgemm" "$OUT/visit.log" | tail -n 40
