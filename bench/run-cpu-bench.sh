#!/usr/bin/env bash
# CPU benchmarks: managed GEMM vs OpenBLAS sgemm (same run) and end-to-end classify latency.
# OpenBLAS is installed here for the benchmark only; the Tdsm library never loads native code.
# Usage: bash bench/run-cpu-bench.sh [gemm|backward|classify|all]   (results under bench/artifacts/)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
if ! ldconfig -p | grep -q 'libopenblas.so.0'; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread
fi
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the machine sets them (see RESULTS.md).
echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
run() { dotnet run -c Release --project bench/Tdsm.Benchmarks -- --filter "$1" --artifacts bench/artifacts; }
case "$what" in
  gemm) run 'Tdsm.Benchmarks.GemmBenchmarks*' ;;
  backward) run 'Tdsm.Benchmarks.BackwardGemmBenchmarks*' ;;
  classify) run 'Tdsm.Benchmarks.Classify*' ;;
  all) run 'Tdsm.Benchmarks.GemmBenchmarks*'; run 'Tdsm.Benchmarks.Classify*' ;;
  *) echo "usage: $0 [gemm|backward|classify|all]" >&2; exit 2 ;;
esac
