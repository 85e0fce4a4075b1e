#!/usr/bin/env bash
# On the build machine: pack the .NET runtime and publish everything a GPU visit runs into .device/
# (git-ignored; carried to the GPU machine with run's carry: [".device"], limit 64 MiB, so the
# published apps travel as one xz archive). See README.md, section "GPU".
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
[ -f .device/dotnet-rt.tar.xz ] || bash ../shared/device/pack-dotnet-runtime.sh
stage=$(mktemp -d)
dotnet publish src/Trainer -c Release -r linux-x64 --self-contained false -o "$stage/app" --nologo -v quiet
dotnet publish tests/Tdsm.Tests.Device -c Release -o "$stage/tests" --nologo -v quiet
dotnet publish bench/Tdsm.Benchmarks -c Release -o "$stage/bench" --nologo -v quiet
mkdir -p "$stage/fixtures" && cp ../shared/fixtures/*.safetensors "$stage/fixtures/"
rm -f .device/payload.tar.xz
tar -C "$stage" -cf - app tests bench fixtures | xz -T0 -6 > .device/payload.tar.xz
rm -rf "$stage"
du -sh .device/* && du -sh .device
