// The CUDA side of ops.slstm / ops.lstm (ops layer), over csrc/binding/cuda_ops_rnn.cc (cuda/recurrent.cu). Same
// tape entry, outputs and gradients as run() in recurrent.ts; the final state is cut out of the per-step states
// with one 2-D copy. Under cuda.autocast the recurrences take their bf16 form (cuda/recurrent_tc.cuh: the recurrent
// matrix products on tensor cores with bf16 operands, where the split-head launch applies); the backward follows the
// forward's choice.
import { record } from "../autograd";
import { autocastActive } from "../device";
import { native } from "../native";
import { Tensor } from "../tensor";

/** The outputs of a recurrence on CUDA tensors (as RecurrentOutput). */
export interface RecurrentCudaOutput {
  y: Tensor;
  state: Tensor;
  states: Tensor;
}

/** ops.slstm / ops.lstm over CUDA tensors (arguments already checked; shapes B, S, NH, DH). */
export function recurrentCuda(kind: "slstm" | "lstm", x: Tensor, R: Tensor, bias: Tensor, state0: Tensor | null, exact: boolean, B: number, S: number, NH: number, DH: number): RecurrentCudaOutput {
  const what = `ops.${kind}`;
  const ns = kind === "slstm" ? 4 : 2, H = NH * DH;
  const y = Tensor._empty([B, S, H]), states = Tensor._empty([ns, S, B, H]), gates = Tensor._empty([B, S, 4 * H]);
  const buf = (t: Tensor | null) => (t ? t._buffer(what) : null);
  const bf16 = autocastActive();
  (kind === "slstm" ? native.cudaSlstmForwardDev : native.cudaLstmForwardDev)(y._buffer(what), states._buffer(what), gates._buffer(what), x._buffer(what), buf(state0), R._buffer(what), bias._buffer(what), B, S, NH, DH, bf16);
  // final state = states[:, S-1]: ns rows of B*H floats, S*B*H apart
  const state = Tensor._empty([ns, B, H]);
  const row = B * H * 4;
  native.cudaCopy2D(state._buffer(what), 0, row, states._buffer(what), (S - 1) * row, S * row, row, ns);
  record(kind, [x, R, bias, state0], [y, state], ([gy, gstate]) => {
    const dx = Tensor._empty(x.shape), dR = Tensor._empty(R.shape), db = Tensor._empty(bias.shape);
    const ds0 = state0?.requiresGrad ? Tensor._empty([ns, B, H]) : null;
    const dy = gy ?? Tensor.zeros([B, S, H], { device: "cuda" });
    if (kind === "slstm") native.cudaSlstmBackwardDev(dx._buffer(what), dR._buffer(what), db._buffer(what), buf(ds0), gates._buffer(what), states._buffer(what), dy._buffer(what), buf(gstate), buf(state0), R._buffer(what), B, S, NH, DH, exact, bf16);
    else native.cudaLstmBackwardDev(dx._buffer(what), dR._buffer(what), db._buffer(what), buf(ds0), gates._buffer(what), states._buffer(what), dy._buffer(what), buf(gstate), buf(state0), R._buffer(what), B, S, NH, DH, bf16);
    if (dy !== gy) dy.dispose();
    return [dx, dR, db, ds0];
  });
  return { y, state, states };
}
