#!/usr/bin/env bash
# One sha256 over the sources a GPU pack is built from (native code, TypeScript, build file), in a fixed order:
# scripts/gpu-pack.sh stores it in .gpu/sources.sha256, scripts/gpu-check.sh compares it with the tree it runs in.
set -euo pipefail
cd "$(dirname "$0")/.."
find csrc cuda lib CMakeLists.txt -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
