#!/usr/bin/env bash
# On the build machine: pack the .NET runtime and publish everything a GPU visit runs into .device/
# (git-ignored; carried to the GPU machine with run's carry: [".device"]). See ../../README.md "GPU".
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
[ -f .device/dotnet-rt.tar.xz ] || bash ../shared/device/pack-dotnet-runtime.sh
rm -rf .device/app .device/tests .device/bench
dotnet publish src/Trainer -c Release -o .device/app --nologo -v quiet
dotnet publish tests/Tdsm.Tests.Device -c Release -o .device/tests --nologo -v quiet
dotnet publish bench/Tdsm.Benchmarks -c Release -o .device/bench --nologo -v quiet
mkdir -p .device/fixtures && cp ../shared/fixtures/*.safetensors .device/fixtures/
du -sh .device/* && du -sh .device
