#!/usr/bin/env python3
"""GEMM baseline: the shapes of bench/gemm.ts timed with numpy's matmul (linked to OpenBLAS here), float32.

Prints one JSON line per shape with "impl": "openblas". Threads: OPENBLAS_NUM_THREADS (default 2, set before numpy
is imported). Median of --reps timed repetitions (default 7) after 1 warm-up. Run it back to back with
`npx tsx bench/gemm.ts` and compare the "value" fields shape by shape.
Usage: python3 bench/gemm_openblas.py [--reps N] [--threads T] [--only NAME_SUBSTRING]
"""
import argparse
import json
import os
import sys
import time


def shapes():
    # Keep in sync with bench/gemm.ts: (M, N, K, variant); variant letters give op(A), op(B): n plain, t transposed.
    out = [(1024, 1024, 1024, v) for v in ("nn", "nt", "tn")]
    for k, n in ((128, 512), (256, 1024), (512, 128), (1024, 256)):
        out.append((4096, n, k, "nn"))  # linear backward dX = dY * W  (here K = out, N = in)
        out.append((4096, n, k, "nt"))  # linear forward  y = x * W^T
        out.append((n, k, 4096, "tn"))  # linear backward dW = dY^T * x (K = B*S)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OPENBLAS_NUM_THREADS", "2")))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np  # after setting the thread count

    rng = np.random.default_rng(0)
    for m, n, k, v in shapes():
        name = f"gemm-{m}x{n}x{k}-{v}"
        if args.only and args.only not in name:
            continue
        a = rng.standard_normal((k, m) if v[0] == "t" else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if v[1] == "t" else (k, n), dtype=np.float32)
        opa = a.T if v[0] == "t" else a  # views: numpy passes the transpose flag to sgemm, no copy
        opb = b.T if v[1] == "t" else b
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(opa, opb, out=c)  # warm-up
        times = []
        for _ in range(max(1, args.reps)):
            t0 = time.perf_counter()
            np.matmul(opa, opb, out=c)
            times.append(time.perf_counter() - t0)
        times.sort()
        flops = 2.0 * m * n * k
        med = times[len(times) // 2]
        print(json.dumps({
            "workload": "gemm", "name": name, "metric": "gflops", "value": round(flops / med / 1e9, 2),
            "device": "cpu", "threads": args.threads, "impl": "openblas",
            "min": round(flops / times[-1] / 1e9, 2), "max": round(flops / times[0] / 1e9, 2),
        }))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
