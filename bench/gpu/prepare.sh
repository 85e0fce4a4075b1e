#!/usr/bin/env bash
# On the build machine: pack the .NET runtime and publish everything a GPU visit runs into .device/
# (git-ignored; carried to the GPU machine with run's carry: [".device"]; the working tree plus
# .device must stay under 64 MiB, so the published apps travel as one xz archive). Then, on the GPU
# machine: bash bench/gpu/visit.sh (see README.md, section "GPU").
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
mkdir -p .device
if [ ! -f .device/dotnet-rt.tar.xz ]; then
  # As ../shared/device/pack-dotnet-runtime.sh does (which fails in a git worktree, where .git is a file).
  dn=$(dirname "$(readlink -f "$(command -v dotnet)")")
  ver=$(dotnet --list-runtimes | awk '/^Microsoft.NETCore.App/ {v=$2} END {print v}')
  tar -C "$dn" -cf - dotnet host "shared/Microsoft.NETCore.App/$ver" | xz -T0 -6 > .device/dotnet-rt.tar.xz
fi
stage=$(mktemp -d)
dotnet publish src/Trainer -c Release -r linux-x64 --self-contained false -o "$stage/app" --nologo -v quiet
dotnet publish tests/Tdsm.Tests.Device -c Release -o "$stage/tests" --nologo -v quiet
dotnet publish bench/Tdsm.Benchmarks -c Release -o "$stage/bench" --nologo -v quiet
mkdir -p "$stage/fixtures" && cp ../shared/fixtures/*.safetensors "$stage/fixtures/"
# What was published, for the visit's summary.
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src kernels tests bench || echo '+dirty') built $(date -u '+%Y-%m-%d %H:%M UTC')" > "$stage/version.txt"
rm -f .device/payload.tar.xz
tar -C "$stage" -cf - app tests bench fixtures version.txt | xz -T0 -6 > .device/payload.tar.xz
cp "$stage/version.txt" .device/version.txt
rm -rf "$stage"
du -sh .device/* && du -sh .device
# The run tool carries the tracked files plus .device: 64 MiB at most.
total=$(( $(du -sb .device | cut -f1) + $(git ls-files -z | xargs -0 du -cb 2> /dev/null | tail -n 1 | cut -f1) ))
echo "carried: $(( total / 1048576 )) MiB of 64 MiB (tracked files + .device)"
[ "$total" -lt $(( 64 * 1048576 )) ] || { echo "too large for the run tool's 64 MiB" >&2; exit 1; }
