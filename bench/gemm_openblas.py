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
    # Keep in sync with lib/bench/gemm.ts: (M, N, K, variant, lda, ldb, ldc); variant letters give op(A), op(B):
    # n plain, t transposed; a leading dimension of None means dense (and is left out of the name).
    out = [(1024, 1024, 1024, v, None, None, None) for v in ("nn", "nt", "tn")]
    for k, n in ((128, 512), (256, 1024), (512, 128), (1024, 256)):
        out.append((4096, n, k, "nn", None, None, None))  # linear backward dX = dY * W  (here K = out, N = in)
        out.append((4096, n, k, "nt", None, None, None))  # linear forward  y = x * W^T
        out.append((n, k, 4096, "tn", None, None, None))  # linear backward dW = dY^T * x (K = B*S)
    # block-diagonal projections (64-wide blocks of 256-wide rows): forward, dx, dW
    out.append((4096, 64, 64, "nt", 256, None, 256))
    out.append((4096, 64, 64, "nt", 256, None, 1024))
    out.append((4096, 64, 64, "nn", 256, None, 256))
    out.append((64, 64, 4096, "tn", 256, 256, None))
    out.append((64, 64, 4096, "tn", 1024, 256, None))
    # sLSTM recurrent-weight gradient
    for k in (4096, 16384, 65536):
        out.append((64, 64, k, "tn", 256, 1024, 256))
    # small-model linear layers: E 128 at 1024 rows, E 256 FFN at 4096 rows
    for k, n in ((128, 512), (256, 128), (128, 384), (192, 128)):
        out.append((1024, n, k, "nt", None, None, None))
        out.append((1024, k, n, "nn", None, None, None))
        out.append((n, k, 1024, "tn", None, None, None))
    for k, n in ((256, 768), (384, 256)):
        out.append((4096, n, k, "nt", None, None, None))
        out.append((4096, k, n, "nn", None, None, None))
        out.append((n, k, 4096, "tn", None, None, None))
    # generation: matrix-vector products
    out += [(1, 1024, 256, "nt", None, None, None), (1, 256, 1024, "nt", None, None, None),
            (1, 1024, 256, "nn", None, None, None), (1024, 1, 256, "nn", None, None, None)]
    return out


def shape_name(m, n, k, v, lda, ldb, ldc):
    ld = "".join(f"-{key}{val}" for key, val in (("lda", lda), ("ldb", ldb), ("ldc", ldc)) if val is not None)
    return f"gemm-{m}x{n}x{k}-{v}{ld}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OPENBLAS_NUM_THREADS", "2")))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np  # after setting the thread count

    rng = np.random.default_rng(0)
    for m, n, k, v, lda, ldb, ldc in shapes():
        name = shape_name(m, n, k, v, lda, ldb, ldc)
        if args.only and args.only not in name:
            continue
        ta, tb = v[0] == "t", v[1] == "t"
        a_rows, a_cols = (k, m) if ta else (m, k)
        b_rows, b_cols = (n, k) if tb else (k, n)
        # strided operands are column slices of wider arrays (numpy hands BLAS the leading dimension, no copy)
        a = rng.standard_normal((a_rows, lda or a_cols), dtype=np.float32)[:, :a_cols]
        b = rng.standard_normal((b_rows, ldb or b_cols), dtype=np.float32)[:, :b_cols]
        opa = a.T if ta else a  # views: numpy passes the transpose flag to sgemm, no copy
        opb = b.T if tb else b
        c = np.empty((m, ldc or n), dtype=np.float32)[:, :n]
        np.matmul(opa, opb, out=c)  # warm-up
        inner = max(1, int(2e7 // (2.0 * m * n * k)))  # about 20 MFLOP per timed run, as in lib/bench/gemm.ts
        times = []
        for _ in range(max(1, args.reps)):
            t0 = time.perf_counter()
            for _ in range(inner):
                np.matmul(opa, opb, out=c)
            times.append((time.perf_counter() - t0) / inner)
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
