// The CUDA side of ops.mlstm (ops layer), over csrc/binding/cuda_ops_mlstm.cc (cuda/mlstm.cu): the chunkwise and
// recurrent kernels with the CPU's `saved` layout and state convention. Same tape entry, outputs and gradients as
// ops.mlstm's CPU path; the kernel choice (form, chunk, parallelInit) is made there and passed in. Under cuda.autocast
// the chunkwise form takes its bf16 variant (cuda/mlstm_bf16.cuh: the products on tensor cores with bfloat16 operands,
// float32 sums, gates and states), and its backward follows the forward's choice.
import { record } from "../autograd";
import { autocastActive } from "../device";
import { native } from "../native";
import { Tensor } from "../tensor";
import type { MlstmOutput, MlstmState } from "./mlstm";

/**
 * Longest chunk the bf16 form takes: it keeps an L x L weight matrix per chunk (B·NH·S·L floats of scratch), so the
 * parallel form of a long sequence (one chunk of S) stays with the float32 kernels, which recompute them per tile.
 */
const BF16_MAX_CHUNK = 256;

/** ops.mlstm on CUDA tensors (arguments checked; the kernel chosen by the caller). */
export function mlstmCuda(
  q: Tensor, k: Tensor, v: Tensor, i: Tensor, f: Tensor, st: MlstmState | null, recurrent: boolean, chunk: number, parallelInit: boolean,
  eps: number, returnLastState: boolean, grad: boolean, name: string,
): MlstmOutput {
  const what = "ops.mlstm";
  const [B, NH, S, DK] = q.shape, DV = v.shape[3];
  const buf = (t: Tensor | null | undefined) => (t ? t._buffer(what) : null);
  const h = Tensor._empty([B, NH, S, DV]), cl = Tensor._empty([B, NH, DK, DV]), nl = Tensor._empty([B, NH, DK]), ml = Tensor._empty([B, NH]);
  const savedLen = !grad ? 0 : recurrent ? native.mlstmRecurrentSavedSize(B, NH, S, DK, DV) : native.mlstmChunkwiseSavedSize(B, NH, S, DK, DV, chunk);
  const saved = grad ? Tensor._empty([savedLen]) : null;
  const args = [h._buffer(what), cl._buffer(what), nl._buffer(what), ml._buffer(what), buf(saved), q._buffer(what), k._buffer(what), v._buffer(what), i._buffer(what), f._buffer(what), buf(st?.c), buf(st?.n), buf(st?.m)] as const;
  const bf16 = !recurrent && chunk <= BF16_MAX_CHUNK && autocastActive();
  if (recurrent) native.cudaMlstmRecurrentForwardDev(...args, B, NH, S, DK, DV, eps);
  else native.cudaMlstmChunkwiseForwardDev(...args, B, NH, S, DK, DV, chunk, eps, parallelInit, bf16);
  const out: MlstmOutput = { h };
  const outputs = [h];
  if (returnLastState) {
    out.state = { c: cl, n: nl, m: ml };
    outputs.push(cl, nl);
  } else [cl, nl, ml].forEach((t) => t.dispose());
  if (!grad) return out;
  const inputs = [q, k, v, i, f, st?.c ?? null, st?.n ?? null, st?.m ?? null];
  record(name, inputs, outputs, ([gh, gc, gn]) => {
    const dq = Tensor._empty(q.shape), dk = Tensor._empty(k.shape), dv = Tensor._empty(v.shape), di = Tensor._empty(i.shape), df = Tensor._empty(f.shape);
    const wantState = st !== null && (st.c.requiresGrad || st.n.requiresGrad || st.m.requiresGrad);
    const dc0 = wantState ? Tensor._empty(st!.c.shape) : null, dn0 = wantState ? Tensor._empty(st!.n.shape) : null, dm0 = wantState ? Tensor._empty(st!.m.shape) : null;
    const dh = gh ?? Tensor.zeros(h.shape, { device: "cuda" });
    const outs = [dq._buffer(what), dk._buffer(what), dv._buffer(what), di._buffer(what), df._buffer(what), buf(dc0), buf(dn0), buf(dm0), saved!._buffer(what)] as const;
    const ins = [q._buffer(what), k._buffer(what), v._buffer(what), i._buffer(what), f._buffer(what)] as const;
    if (recurrent) native.cudaMlstmRecurrentBackwardDev(...outs, dh._buffer(what), buf(gc), buf(gn), ...ins, B, NH, S, DK, DV, eps);
    else native.cudaMlstmChunkwiseBackwardDev(...outs, h._buffer(what), dh._buffer(what), buf(gc), buf(gn), ...ins, B, NH, S, DK, DV, chunk, eps, bf16);
    if (dh !== gh) dh.dispose();
    return [dq, dk, dv, di, df, dc0, dn0, dm0];
  });
  return out;
}
