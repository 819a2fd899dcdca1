#!/usr/bin/env bash
# Packs what a GPU session's device machine lacks into .gpu/ (git-ignored), for the `device` tool's `run` with
# carry [".gpu"]: that machine has nvcc, CMake and ninja but no Node, and the working tree travels without
# node_modules and without ../shared. Writes .gpu/node.xz (this machine's node binary), .gpu/node_modules.tar.xz
# and .gpu/fixtures.tar (../shared/fixtures, or $XLSTM_FIXTURES). About 55 MiB in all, under the 64 MiB a run
# may carry. Then, on the device machine: scripts/gpu-check.sh (see there).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
node_bin=$(readlink -f "$(command -v node)")
[ -s .gpu/node.xz ] || xz -T0 -6 -c "$node_bin" > .gpu/node.xz
tar -cf - node_modules | xz -T0 -6 > .gpu/node_modules.tar.xz
fixtures=${XLSTM_FIXTURES:-../shared/fixtures}
if [ -d "$fixtures" ]; then tar -C "$(dirname "$fixtures")" -cf .gpu/fixtures.tar "$(basename "$fixtures")"; fi
du -sh .gpu/*
echo "carry .gpu (total $(du -sh .gpu | cut -f1)); run: bash scripts/gpu-check.sh"
