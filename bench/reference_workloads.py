"""The standard CPU workloads (../shared/bench/WORKLOADS.md) on the PyTorch reference, for back-to-back ratios.

Runs the official PyTorch xLSTM package (NX-AI/xlstm, found on PYTHONPATH) and torch.nn.LSTM with the shapes and
steps `xlstm bench` times, and prints the same JSON lines (plus "impl": "pytorch-reference" and the torch version):

    PYTHONPATH=/path/to/xlstm-checkout python3 bench/reference_workloads.py [--workload W1,W2] [--reps 5] [--threads 2]

W1 stack-train, W2 lm-train (AdamW, clip 1.0), W3 slstm-layer, W4 mlstm-cell at S 256 / 1024 (its peak-memory
column needs a fresh process per size: not measured here), W5 generate-step / prefill-256, W6 lstm-d2l, and G1's
shapes on torch.nn.LSTM. `--device cuda` runs them on a GPU (float32, TF32 off; G1 also under bf16 autocast). The
reference's sLSTM runs with its "vanilla" backend unless `--slstm-backend cuda` (which compiles its kernels). Medians of `reps` timed runs
after an untimed warm-up of at least one run and 0.5 s, as `xlstm bench` does. Not part of the npm package (no Python at run time); see the README's
performance section for how the ratios were taken.
"""

import argparse
import json
import statistics
import sys
import time

import torch


DEVICE = "cpu"  # --device: every module and tensor is made there (torch.set_default_device)
SLSTM_BACKEND = "vanilla"  # --slstm-backend


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


WARMUP_S = 0.5  # untimed warm-up: at least one run, then more until this many seconds (as lib/bench/index.ts)
WARMUP_MAX_RUNS = 1000


def timed(step, reps):
    start = time.perf_counter()
    for _ in range(WARMUP_MAX_RUNS):
        step()
        sync()
        if time.perf_counter() - start >= WARMUP_S:
            break
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def stack_config(E, num_blocks, slstm_at, slstm_backend=None):
    from xlstm import FeedForwardConfig, mLSTMBlockConfig, mLSTMLayerConfig, sLSTMBlockConfig, sLSTMLayerConfig

    return dict(
        mlstm_block=mLSTMBlockConfig(mlstm=mLSTMLayerConfig(conv1d_kernel_size=4, qkv_proj_blocksize=4, num_heads=4)),
        slstm_block=sLSTMBlockConfig(
            slstm=sLSTMLayerConfig(backend=slstm_backend or SLSTM_BACKEND, num_heads=4, conv1d_kernel_size=4, bias_init="powerlaw_blockdependent"),
            feedforward=FeedForwardConfig(proj_factor=1.3, act_fn="gelu"),
        ),
        context_length=256,
        num_blocks=num_blocks,
        embedding_dim=E,
        slstm_at=slstm_at,
    )


def lm_model():
    from xlstm import xLSTMLMModel, xLSTMLMModelConfig

    model = xLSTMLMModel(xLSTMLMModelConfig(vocab_size=256, **stack_config(256, 6, [3])))
    model.reset_parameters()
    return model


def w1(reps):
    from xlstm import xLSTMBlockStack, xLSTMBlockStackConfig

    stack = xLSTMBlockStack(xLSTMBlockStackConfig(**stack_config(128, 7, [1])))
    stack.reset_parameters()
    B, S = 4, 256
    x = torch.randn(B, S, 128)

    def step():
        stack.zero_grad()
        y = stack(x)
        (y * y).mean().backward()

    med, lo, hi = timed(step, reps)
    yield dict(workload="W1", name="stack-train", metric="tokens_per_s", value=B * S / med, min=B * S / hi, max=B * S / lo)


def w2(reps):
    model = lm_model()
    B, S, V = 8, 256, 256
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    ids = torch.randint(0, V, (B, S + 1))
    x, y = ids[:, :S], ids[:, 1:]

    def step():
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(B * S, V), y.reshape(B * S))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    med, lo, hi = timed(step, reps)
    yield dict(workload="W2", name="lm-train", metric="tokens_per_s", value=B * S / med, min=B * S / hi, max=B * S / lo)


def w3(reps):
    from xlstm import sLSTMLayer, sLSTMLayerConfig

    layer = sLSTMLayer(sLSTMLayerConfig(embedding_dim=256, num_heads=4, conv1d_kernel_size=4, backend=SLSTM_BACKEND))
    layer.reset_parameters()
    x = torch.randn(8, 512, 256)

    def step():
        layer.zero_grad()
        y = layer(x)
        (y * y).mean().backward()

    med, lo, hi = timed(step, reps)
    yield dict(workload="W3", name="slstm-layer", metric="seconds", value=med, min=lo, max=hi)


def w4(reps):
    from xlstm.blocks.mlstm.backends import parallel_stabilized_simple

    B, NH, DH = 1, 4, 64
    for S in (256, 1024):
        q, k, v = (torch.randn(B, NH, S, DH, requires_grad=True) for _ in range(3))
        i = torch.randn(B, NH, S, 1, requires_grad=True)
        f = (3 + torch.randn(B, NH, S, 1)).requires_grad_()

        def step():
            h = parallel_stabilized_simple(q, k, v, i, f)
            (h * h).mean().backward()

        med, lo, hi = timed(step, reps)
        yield dict(workload="W4", name=f"mlstm-cell-S{S}", metric="seconds", value=med, min=lo, max=hi)


def w5(reps):
    model = lm_model().eval()
    prompt = torch.randint(0, 256, (1, 256))
    steps = 256

    @torch.no_grad()
    def generate():
        state = None
        tok = prompt[:, :1]
        for _ in range(steps):
            logits, state = model.step(tok, state=state)
            tok = logits[:, -1:].argmax(-1)

    @torch.no_grad()
    def prefill():
        model(prompt)

    med, lo, hi = timed(generate, max(1, reps // 2))
    yield dict(workload="W5", name="generate-step", metric="ms_per_token", value=med / steps * 1e3, min=lo / steps * 1e3, max=hi / steps * 1e3)
    med, lo, hi = timed(prefill, reps)
    yield dict(workload="W5", name="prefill-256", metric="seconds", value=med, min=lo, max=hi)


def w6(reps):
    V, H, B, S = 28, 256, 32, 35
    lstm = torch.nn.LSTM(V, H, batch_first=True)
    head = torch.nn.Linear(H, V)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=1)
    ids = torch.randint(0, V, (B, S + 1))
    x = torch.nn.functional.one_hot(ids[:, :S], V).float()
    y = ids[:, 1:].reshape(-1)

    def step():
        out, _ = lstm(x)
        loss = torch.nn.functional.cross_entropy(head(out.reshape(B * S, H)), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    med, lo, hi = timed(step, reps)
    yield dict(workload="W6", name="lstm-d2l", metric="tokens_per_s", value=B * S / med, min=B * S / hi, max=B * S / lo)


def g1(reps):
    """G1's shapes on torch.nn.LSTM (cuDNN on a GPU): B 16, T 1024, hidden 768. Unlike xlstm's G1 rows (the
    recurrence alone, x given as the gate pre-activations) this includes the input projection (one GEMM)."""
    B, T, H = 16, 1024, 768
    lstm = torch.nn.LSTM(H, H, batch_first=True)
    x = torch.randn(B, T, H, requires_grad=True)
    dy = torch.randn(B, T, H)
    for dtype in ("float32", "bfloat16"):
        ctx = (lambda: torch.autocast(DEVICE, dtype=torch.bfloat16)) if dtype == "bfloat16" else (lambda: torch.autocast(DEVICE, enabled=False))

        def fwd():
            with torch.no_grad(), ctx():
                lstm(x)

        def both():
            with ctx():
                y, _ = lstm(x)
            y.backward(dy.to(y.dtype))
            lstm.zero_grad()
            x.grad = None

        for name, fn in (("lstm-forward", fwd), ("lstm-forward-backward", both)):
            med, lo, hi = timed(fn, reps)
            yield dict(workload="G1", name=name, metric="ms", value=med * 1e3, min=lo * 1e3, max=hi * 1e3, dtype=dtype, impl_detail="torch.nn.LSTM incl. input projection")


WORKLOADS = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5, "W6": w6, "G1": g1}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workload", default=",".join(WORKLOADS))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="run the workloads there (float32 with TF32 off)")
    ap.add_argument("--slstm-backend", default="vanilla", choices=["vanilla", "cuda"], help="the reference sLSTM's backend ('cuda' compiles its kernels: needs a GPU)")
    a = ap.parse_args()
    global DEVICE, SLSTM_BACKEND
    DEVICE, SLSTM_BACKEND = a.device, a.slstm_backend
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if DEVICE == "cuda":
        # float32 as xlstm runs it: no TF32 in matrix products or cuDNN
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_default_device(DEVICE)
    torch.manual_seed(0)
    for wid in a.workload.split(","):
        if wid not in WORKLOADS:
            sys.exit(f"reference_workloads.py: unknown workload {wid!r} (known: {', '.join(WORKLOADS)})")
        for row in WORKLOADS[wid](a.reps):
            row.update(device=DEVICE, impl="pytorch-reference", torch=torch.__version__, threads=torch.get_num_threads(), reps=a.reps)
            if DEVICE == "cuda":
                row.update(gpu=torch.cuda.get_device_name(0), slstm_backend=SLSTM_BACKEND)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
