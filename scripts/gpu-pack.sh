#!/usr/bin/env bash
# Packs what a GPU session's device machine lacks into .gpu/ (git-ignored), for the `device` tool's `run` with
# carry [".gpu"]: that machine has nvcc, CMake and ninja but no Node, and the working tree travels without
# node_modules, build outputs and ../shared. Device time is scarce (minutes per session), so the addon is built
# HERE for the GPU's architecture (nvcc needs no GPU) and travels as a binary, with the compiled TypeScript:
#   .gpu/node.xz              this machine's node binary
#   .gpu/node_modules.tar.xz  node_modules without the TypeScript compiler (dist/ is prebuilt; tests run via tsx)
#   .gpu/dist.tar.xz          dist/ (npm run build:ts)
#   .gpu/xlstm.node.xz        the addon from $GPU_BUILD (default build-gpu/, made by
#                             `npx cmake-js rebuild -O build-gpu --CDCMAKE_CUDA_ARCHITECTURES=90`), when present;
#                             without it scripts/gpu-check.sh builds on the device
#   .gpu/xlstm-base.node.xz  $GPU_BASE when set: an earlier build for the "ab" step
#   .gpu/fixtures.tar.xz      ../shared/fixtures, or $XLSTM_FIXTURES
#   .gpu/xref.tar.xz          the official xlstm package's source, when $XLSTM_REF names a checkout of NX-AI/xlstm
# All under the 64 MiB a run may carry. Then, on the device machine: scripts/gpu-check.sh (see there).
# .gpu/sources.sha256 fingerprints the sources the pack was made from (scripts/source-fingerprint.sh): gpu-check.sh
# refuses a pack whose fingerprint differs from the tree it runs in, so a stale pack cannot spend a GPU call.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${GPU_BUILD:-build-gpu}/Release/xlstm.node
# a binary older than a source it is built from is stale (GPU_ALLOW_STALE=1 packs it anyway)
newer=$([ -f "$binary" ] && find csrc cuda CMakeLists.txt -type f -newer "$binary" | head -1 || true)
if [ -n "$newer" ] && [ "${GPU_ALLOW_STALE:-0}" != 1 ]; then
  echo "$binary is older than $newer: rebuild it (npx cmake-js rebuild -O build-gpu --CDCMAKE_CUDA_ARCHITECTURES=90)" >&2
  exit 1
fi
rm -rf .gpu && mkdir -p .gpu
bash scripts/source-fingerprint.sh > .gpu/sources.sha256
node_bin=$(readlink -f "$(command -v node)")
xz -T0 -6 -c "$node_bin" > .gpu/node.xz
tar -cf - --exclude=node_modules/@typescript --exclude=node_modules/typescript node_modules | xz -T0 -6 > .gpu/node_modules.tar.xz
npm run -s build:ts
tar -cf - dist | xz -T0 -6 > .gpu/dist.tar.xz
if [ -f "$binary" ]; then xz -T0 -6 -c "$binary" > .gpu/xlstm.node.xz; else echo "no $binary: gpu-check.sh will build on the device"; fi
# the binary to compare against (scripts/gpu-check.sh's "ab" step): $GPU_BASE, an earlier build for the same GPU
if [ -n "${GPU_BASE:-}" ] && [ -f "$GPU_BASE" ]; then xz -T0 -6 -c "$GPU_BASE" > .gpu/xlstm-base.node.xz; fi
# the official PyTorch xLSTM's source (pure Python; the device has PyTorch) for the "reference" step: a checkout's
# xlstm/ folder from $XLSTM_REF
if [ -n "${XLSTM_REF:-}" ] && [ -d "$XLSTM_REF/xlstm" ]; then tar -C "$XLSTM_REF" -cf - xlstm | xz -T0 -6 > .gpu/xref.tar.xz; fi
fixtures=${XLSTM_FIXTURES:-../shared/fixtures}
if [ -d "$fixtures" ]; then tar -C "$(dirname "$fixtures")" -cf - "$(basename "$fixtures")" | xz -T0 -6 > .gpu/fixtures.tar.xz; fi
du -sh .gpu/*
echo "carry .gpu (total $(du -sh .gpu | cut -f1)); run: bash scripts/gpu-check.sh"
