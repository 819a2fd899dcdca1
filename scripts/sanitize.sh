#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the native addon (CI-able; not part of `npm test`).
#
#   scripts/sanitize.sh [mocha test files...]
#
# 1. Builds the addon with -fsanitize=address,undefined (plus float-cast-overflow, which GCC's "undefined" leaves
#    out) and -fno-sanitize-recover into build-asan/ (CUDA off; the normal build/ is untouched).
# 2. Runs a subset of the suite against it (XLSTM_BINARY points lib/native.ts at the sanitized binary): the kernel
#    and op tests, the fuzzers (their child processes inherit the sanitizer environment) and the concurrency tests.
#    Node is not instrumented, so libasan is LD_PRELOADed; leak detection is off (Node leaks at exit by design).
#    Tests whose title mentions RSS are left out, and timing bounds are not asserted (XLSTM_UNDER_SANITIZER=1):
#    ASan's quarantine and shadow memory inflate RSS, and instrumented code is several times slower.
# 3. Fails on any finding: a sanitizer aborts the offending process at the first report (halt_on_error), and every
#    report is also written under build-asan/reports/, which must stay empty, so a finding inside a child process
#    fails the run even if the test that spawned it did not notice.
#
# Environment: XLSTM_SANITIZE_JOBS (build parallelism, default nproc), XLSTM_FUZZ_LONG=1 for the long fuzz.
# Exit status: 0 when clean; 1 on a test failure or any sanitizer report.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="build-asan"
reports="$root/$out/reports"
lock="${XLSTM_BUILD_LOCK:-/tmp/xlstm-build.lock}"

flags="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
mkdir -p "$out"
log="$out/build.log"
echo "sanitize: building $out with $flags (log: $log)" >&2
flock "$lock" npx cmake-js compile --out "$out" -p "${XLSTM_SANITIZE_JOBS:-$(nproc)}" \
  --CDXLSTM_CUDA=OFF \
  --CDCMAKE_CXX_FLAGS_RELEASE="-DNDEBUG $flags" \
  --CDCMAKE_C_FLAGS_RELEASE="-DNDEBUG $flags" \
  --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined,float-cast-overflow" >"$log" 2>&1 || {
  tail -40 "$log" >&2
  echo "sanitize: build failed (log: $log)" >&2
  exit 1
}
binary="$root/$out/Release/xlstm.node"
[ -f "$binary" ] || { echo "sanitize: $binary was not built" >&2; exit 1; }
# (cmake-js passes its own CMAKE_CXX_FLAGS after ours, hence the *_RELEASE variables above; check it worked)
undef="$(nm -D --undefined-only "$binary")"
grep -c __asan_report <<<"$undef" >/dev/null || { echo "sanitize: $binary is not instrumented" >&2; exit 1; }
grep -c __ubsan_handle <<<"$undef" >/dev/null || { echo "sanitize: $binary has no UBSan checks" >&2; exit 1; }

libasan="$(gcc -print-file-name=libasan.so)"
[ -f "$libasan" ] || { echo "sanitize: libasan not found ($libasan)" >&2; exit 1; }

if [ "$#" -gt 0 ]; then
  tests=("$@")
else
  tests=(test/20.*.test.ts test/30.autograd.test.ts test/35.*.test.ts test/40.recurrent.test.ts test/42.mlstm.test.ts
    test/43.mlstm-layer-fused.test.ts
    test/45.nn-lstm.test.ts test/47.slstm-layer.test.ts test/49.stack.test.ts test/50.safetensors.test.ts
    test/56.infer.test.ts test/58.large.test.ts test/60.optim.test.ts
    test/80.fuzz-files.test.ts test/82.fuzz-api.test.ts test/84.responsive.test.ts test/88.async-buffers.test.ts)
fi

rm -rf "$reports"
mkdir -p "$reports"
echo "sanitize: running ${#tests[@]} test files against $binary" >&2
status=0
# XLSTM_UNDER_SANITIZER: tests that time things (event-loop delay bounds) skip their timing assertions
flock -s "$lock" env \
  XLSTM_BINARY="$binary" \
  XLSTM_UNDER_SANITIZER=1 \
  LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=0:log_path=$reports/asan" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan" \
  npx mocha --grep "RSS" --invert "${tests[@]}" 2>&1 | tee "$out/test.log" || status=$?
# a report printed by a child process whose own log did not reach $reports still fails the run
if grep -E "runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$out/test.log" >"$reports/from-test-output.txt"; then :; else rm -f "$reports/from-test-output.txt"; fi

found=$(find "$reports" -type f | wc -l)
if [ "$found" -gt 0 ]; then
  echo "sanitize: $found sanitizer report(s):" >&2
  for f in "$reports"/*; do
    echo "---- $f" >&2
    head -60 "$f" >&2
  done
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "sanitize: tests failed under the sanitizers (exit $status), no sanitizer report" >&2
  exit 1
fi
echo "sanitize: clean (${#tests[@]} test files, no AddressSanitizer/UndefinedBehaviorSanitizer reports)" >&2
