#!/usr/bin/env bash
# The GPU session's checklist, run on the device machine (the `device` tool: run with carry [".gpu"] after
# scripts/gpu-pack.sh here; one call):
#   1. Node, node_modules and dist from .gpu/; the addon from .gpu/xlstm.node.xz when packed, else built here with
#      CUDA for this GPU's architecture only (CUDA_ARCH, default 90);
#   2. the CUDA tests: kernel parity (test/20, test/21), device memory and CUDA tensors (22, 23), every fixture on
#      the GPU (48, "on cuda"), bf16 weights and xLSTM Large on the GPU (36, 59), training and generation on the GPU
#      (64); then (step "all") the whole suite;
#   3. xlstm check-fixtures --device cuda, and xlstm bench --device cuda (G1 both launches, G2, G3, L1-cuda) next to
#      the CPU's W1/W2 (step "cpubench").
# Each step has a time limit (seconds: T_CUDA, T_FIXTURES, T_BENCH, ...) so one hang cannot eat the call. Logs land
# in $OUT as they are written (they come back even when the call runs out): build.log, cuda-tests.log,
# all-tests.log, fixtures.log, bench-gpu.jsonl, bench-cpu.jsonl, reference-gpu.jsonl, nvidia-smi.txt, steps.txt, ncu-details.txt,
# ncu-source.csv (at most 8 come back per call: pick STEPS accordingly).
# STEPS=build,cuda,fixtures,bench (default; also: unverified, ab, reference, cpubench, profile, all) picks steps; TESTS overrides the CUDA test files; WORKLOADS the GPU ones.
# "unverified": the short first call of a GPU session: the tests of what was last written without a GPU (session
# 13's float32 tiled GEMM with 16-byte staging and the next slice in flight: the grep's "GEMM staging|identical
# bits|either kernel"; session 14's mLSTM n-state passes, row-form weights / grad extras and the opt-in scan
# states (cudaSetMlstmStates("scan"): G2's "-scan-states" rows time it): "GPU equals the CPU|on the GPU|equal the GPU
# bit"; session 15's opt-in wide tiles of the bf16 GEMM (cudaSetGemmBf16Tiles("auto"): "wide tiles", timed by the
# "-wide-gemm" rows of G1, G2, G3); session 16's opt-in fused intra-chunk kernels (cudaSetMlstmIntra("fused"): "on
# the GPU" / "fused intra" match their test/21 and test/23 cases; timed by G2's "-fused-intra" rows, profiled by
# STEPS=profile PROFILE=g2-fused:128 NCU_KERNELS=mlstm_fused); session 17's capped split launch of the recurrences
# (cudaSetRecurrentSplitBlocks), the bf16 backward's gather exchange (cudaSetRecurrentExchange("gather"),
# recurrent_gather.cuh) and the autotune of both (cudaSetRecurrentAutotune): test/21.cuda-recurrent's "capped",
# "on the GPU" and "autotune" cases; timed by G1's "-split-blocks{96,64,48}", "-gather" and "-autotune" rows in the
# "ab" step); the older greps — split K, the float32 mLSTM form, garbage-collector reporting, decode's permute
# views, chunkSize — ran on an H100 in session 13), test/64, test/59 and test/57, then G1, G2, G3, G3-W5, L1-cuda, W1-cuda and G2-forms (UNVERIFIED_WORKLOADS)
# (unverified.log, bench-unverified.jsonl). Session 19 (no GPU) added: CUDA graphs of the device sessions' decode steps
# (test/57's "CUDA graphs" cases, whose status string names a failed capture's reason; G3-W5's and L1-cuda's
# "-session-graphs" rows with vs_session), the device session's chunkwise prefill ("prefill-256-session"), dynamic
# shared-memory limits only raised (raise_smem_limit) and the autotune's choices dropped on a settings change
# (test/21's "autotune" case). Then time that GEMM change with the "ab" step against a build of 3b48679
# (the last commit whose float32 GEMM ran on a GPU; a worktree builds it in ~2 minutes here).
# "ab": the same workloads with this build and with $GPU_BASE's, back to back (what a kernel change bought).
# Every row of G1, G2, G2-forms, G3, G3-W5 and L1-cuda has already run at tiny shapes on the emulated device
# (test/70, XLSTM_BENCH_SHAPES=tiny): a row that fails here fails on the GPU's own terms, not on its wiring.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/xlstm-gpu-out}
mkdir -p "$OUT"
STEPS=${STEPS:-build,cuda,fixtures,bench}
has() { [[ ",$STEPS," == *",$1,"* ]]; }
t0=$(date +%s)
step() { echo "$(( $(date +%s) - t0 ))s $*" | tee -a "$OUT/steps.txt"; }
# the pack must come from these sources (gpu-pack.sh's fingerprint); GPU_ALLOW_STALE=1 runs a stale pack anyway. (Run
# locally, this script also unpacks .gpu/dist.tar.xz over dist/: rebuild dist/ after.)
if [ "${GPU_ALLOW_STALE:-0}" != 1 ] && [ "$(bash scripts/source-fingerprint.sh)" != "$(cat .gpu/sources.sha256 2>/dev/null)" ]; then
  echo "stale pack: .gpu/ was made from other sources than this tree's; run scripts/gpu-pack.sh" | tee -a "$OUT/steps.txt"
  exit 1
fi
if ! command -v node >/dev/null 2>&1; then
  mkdir -p /tmp/xlstm-node/bin
  xz -dc .gpu/node.xz > /tmp/xlstm-node/bin/node && chmod +x /tmp/xlstm-node/bin/node
  export PATH=/tmp/xlstm-node/bin:$PATH
fi
[ -d node_modules ] || tar -xJf .gpu/node_modules.tar.xz
[ -f .gpu/dist.tar.xz ] && tar -xJf .gpu/dist.tar.xz
if [ -f .gpu/fixtures.tar.xz ]; then
  mkdir -p /tmp/xlstm-fixtures && tar -C /tmp/xlstm-fixtures -xJf .gpu/fixtures.tar.xz
  export XLSTM_FIXTURES=/tmp/xlstm-fixtures/fixtures
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
step unpacked
if has build; then
  if [ -f .gpu/xlstm.node.xz ]; then
    mkdir -p build/Release && xz -dc .gpu/xlstm.node.xz > build/Release/xlstm.node
  else
    arch=${CUDA_ARCH:-90}
    (node_modules/.bin/cmake-js rebuild --CDCMAKE_CUDA_ARCHITECTURES="$arch" && node_modules/.bin/tsc -p tsconfig.build.json && node scripts/write-esm-entry.js) > "$OUT/build.log" 2>&1 || { echo "build failed"; tail -40 "$OUT/build.log"; exit 1; }
  fi
  step built
fi
node -e 'const b=require("./build/Release/xlstm.node").backends().cuda; console.log(JSON.stringify(b)); if(!b.available) process.exit(1)' | tee "$OUT/backends.json" || { echo "no usable GPU"; exit 1; }
status=0
if has cuda; then
  TESTS=${TESTS:-test/20.*.test.ts test/21.*.test.ts test/22.*.test.ts test/23.*.test.ts test/30.autograd.test.ts test/36.bf16-weights.test.ts test/40.recurrent.test.ts test/47.slstm-layer.test.ts test/48.fixtures.test.ts test/59.large-generate.test.ts test/64.train.test.ts}
  timeout -k 5 "${T_CUDA:-240}" node_modules/.bin/mocha $TESTS > "$OUT/cuda-tests.log" 2>&1 || status=1
  step "cuda tests: $(tail -1 "$OUT/cuda-tests.log")"
fi
if has unverified; then
  timeout -k 5 "${T_UNVERIFIED:-240}" node_modules/.bin/mocha test/20.gemm.test.ts test/21.cuda-mlstm.test.ts test/21.cuda-recurrent.test.ts test/23.cuda-tensors.test.ts \
    --grep "GEMM staging|identical bits|either kernel|GPU equals the CPU|on the GPU|equal the GPU bit|wide tiles|fused intra|capped|autotune|split-K|default float32|composed|garbage collector|deterministic|chunkSize|decode step|permuteOrView" > "$OUT/unverified.log" 2>&1 || status=1
  timeout -k 5 "${T_TRAIN:-120}" node_modules/.bin/mocha test/64.train.test.ts test/59.large-generate.test.ts test/57.infer-cuda.test.ts >> "$OUT/unverified.log" 2>&1 || status=1
  step "unverified tests: $(tail -1 "$OUT/unverified.log")"
  # G1's and G2's opt-in rows (split blocks, gather, autotune, wide tiles, fused intra, scan states) run back to back
  # with their defaults in one binary: this bench alone decides which opt-ins become defaults
  timeout -k 5 "${T_BENCH:-210}" node bin/xlstm.js bench --device cuda --workload "${UNVERIFIED_WORKLOADS:-G1,G2,G3,G3-W5,L1-cuda,W1-cuda,G2-forms}" --reps "${REPS:-5}" > "$OUT/bench-unverified.jsonl" 2>&1 || status=1
  step "unverified bench done"
  cat "$OUT/bench-unverified.jsonl"
fi
if has ab; then
  # A/B: the same workloads (AB_WORKLOADS) with the binary this session started from (.gpu/xlstm-base.node.xz, packed by
  # gpu-pack.sh from $GPU_BASE) and with this build, back to back, AB_ROUNDS times (default 2; bench-ab.jsonl; "binary" lines mark each run)
  xz -dc .gpu/xlstm-base.node.xz > /tmp/xlstm-base.node
  for round in $(seq "${AB_ROUNDS:-2}"); do
    for bin in base new; do
      echo "{\"binary\":\"$bin\",\"round\":$round}" >> "$OUT/bench-ab.jsonl"
      if [ $bin = base ]; then export XLSTM_BINARY=/tmp/xlstm-base.node; else unset XLSTM_BINARY; fi
      timeout -k 5 "${T_AB:-120}" node bin/xlstm.js bench --device cuda --workload "${AB_WORKLOADS:-G2,G3}" --reps "${REPS:-5}" >> "$OUT/bench-ab.jsonl" 2>&1 || status=1
    done
  done
  unset XLSTM_BINARY
  step "a/b done"
fi
if has fixtures; then
  timeout -k 5 "${T_FIXTURES:-90}" node bin/xlstm.js check-fixtures "$XLSTM_FIXTURES" --device cuda > "$OUT/fixtures.log" 2>&1 || status=1
  step "fixtures: $(tail -1 "$OUT/fixtures.log")"
fi
if has bench; then
  timeout -k 5 "${T_BENCH:-150}" node bin/xlstm.js bench --device cuda --workload "${WORKLOADS:-G1,G1-split-lane,G2,G3,G3-W5,L1-cuda,W1-cuda,W3-cuda,W4-cuda,W6-cuda}" --reps "${REPS:-5}" > "$OUT/bench-gpu.jsonl" 2> "$OUT/bench-gpu.err" || status=1
  step "gpu bench done"
  cat "$OUT/bench-gpu.jsonl"
fi
if has cpubench; then
  timeout -k 5 "${T_CPUBENCH:-120}" node bin/xlstm.js bench --workload W1,W2 --reps 5 > "$OUT/bench-cpu.jsonl" 2>&1 || status=1
  step "cpu bench done"
fi
if has reference; then
  # the PyTorch reference on this GPU (bench/reference_workloads.py --device cuda: torch.nn.LSTM at G1's shapes, and
  # W1-W6 with the official xlstm package from .gpu/xref.tar.xz), for ratios next to bench-gpu.jsonl
  mkdir -p /tmp/xref && { [ -f .gpu/xref.tar.xz ] && tar -C /tmp/xref -xJf .gpu/xref.tar.xz; }
  refs=G1; [ -d /tmp/xref/xlstm ] && refs=${REFERENCE_WORKLOADS:-G1,W1,W2,W3,W4,W5,W6}
  PYTHONPATH=/tmp/xref timeout -k 5 "${T_REFERENCE:-180}" python3 bench/reference_workloads.py --device cuda --workload "$refs" --reps "${REPS:-5}" > "$OUT/reference-gpu.jsonl" 2>&1 || status=1
  step "reference done"
fi
if has profile; then
  # Nsight Compute over one pass of PROFILE (g1 | g1-bf16[:cap] | g1-gather[:cap] | g2 | g2-bf16 | g2-fused[:chunk]: scripts/gpu-profile.js), kernels matching NCU_KERNELS (g1: the
  # split recurrences and the dR pass; g2: the first NCU_COUNT launches, every kind): the details page (throughput,
  # stall reasons, occupancy) and the per-SASS-instruction source page (stall samples)
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  # NCU_ARGS (default "--set full"): e.g. "--metrics gpu__time_duration.sum" for every kernel's time alone (one pass each)
  case "${PROFILE:-g1}" in g2*) NCU_KERNELS=${NCU_KERNELS:-.}; NCU_COUNT=${NCU_COUNT:-24};; esac  # every mLSTM kernel
  timeout -k 5 "${T_PROFILE:-200}" "$ncu" --target-processes all --kernel-name "regex:${NCU_KERNELS:-rec_split|rec_pg}" \
    --launch-count "${NCU_COUNT:-3}" ${NCU_ARGS:---set full} --import-source no -f -o /tmp/xlstm-prof node scripts/gpu-profile.js "${PROFILE:-g1}" > /tmp/ncu.log 2>&1 || status=1
  tail -5 /tmp/ncu.log
  "$ncu" -i /tmp/xlstm-prof.ncu-rep --page details > "$OUT/ncu-details.txt" 2>&1
  "$ncu" -i /tmp/xlstm-prof.ncu-rep --page source --csv --print-source sass > "$OUT/ncu-source.csv" 2>&1
  step "profile done"
fi
if has all; then
  timeout -k 5 "${T_ALL:-420}" node_modules/.bin/mocha 'test/**/*.test.ts' > "$OUT/all-tests.log" 2>&1 || status=1
  step "all tests: $(tail -1 "$OUT/all-tests.log")"
fi
exit $status
