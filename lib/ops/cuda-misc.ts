// The CUDA side of reductions, causal conv1d, dropout and permute (ops layer), over csrc/binding/cuda_ops_misc.cc
// (cuda/reduce.cu, conv1d.cu, dropout.cu, permute.cu). Same tape entries and gradients as the CPU forms; dropout
// draws its two Philox keys from the same generator, so a seed drops the same elements on either device.
import { record1 } from "../autograd";
import { ELEMENT_BYTES } from "../device";
import { native } from "../native";
import { Tensor } from "../tensor";

/** ops.sum / mean / max of a CUDA tensor over `axes`, output `outShape`. */
export function reduceCuda(name: string, op: "sum" | "mean" | "max", x: Tensor, axes: number[], outShape: number[]): Tensor {
  const what = `ops.${name}`;
  const out = Tensor._empty(outShape);
  const argmax = op === "max" ? Tensor._empty(outShape, "int64") : null;
  native.cudaReduceDev(op, x._buffer(what), x.shape, axes, out._buffer(what), argmax?._buffer(what) ?? null);
  return record1(name, [x], out, (g) => {
    const dx = Tensor._empty(x.shape);
    native.cudaReduceBackwardDev(op, g._buffer(what), x.shape, axes, dx._buffer(what), argmax?._buffer(what) ?? null);
    return [dx];
  });
}

/** ops.causalConv1d for CUDA tensors: x [b, s, f], weight [f, (1,) k], bias [f] or null. */
export function causalConv1dCuda(x: Tensor, weight: Tensor, bias: Tensor | null, b: number, s: number, f: number, k: number): Tensor {
  const what = "ops.causalConv1d";
  const out = Tensor._empty(x.shape);
  native.cudaCausalConv1dDev(out._buffer(what), x._buffer(what), weight._buffer(what), bias?._buffer(what) ?? null, b, s, f, k);
  return record1("causalConv1d", [x, weight, bias], out, (g) => {
    const gx = x.requiresGrad ? Tensor._empty(x.shape) : null;
    const gw = weight.requiresGrad ? Tensor._empty(weight.shape) : null;
    const gb = bias?.requiresGrad ? Tensor._empty(bias.shape) : null;
    native.cudaCausalConv1dBackwardDev(gx?._buffer(what) ?? null, gw?._buffer(what) ?? null, gb?._buffer(what) ?? null, g._buffer(what), x._buffer(what), weight._buffer(what), b, s, f, k);
    return [gx, gw, gb];
  });
}

/** ops.dropout for a CUDA tensor with keys already drawn. */
export function dropoutCuda(x: Tensor, p: number, key0: number, key1: number): Tensor {
  const what = "ops.dropout";
  const out = Tensor._empty(x.shape);
  const mask = Tensor._empty([Math.ceil(x.numel / 2)], "bfloat16");  // n bytes of mask (2 per element of this dtype)
  native.cudaDropoutDev(out._buffer(what), mask._buffer(what), x._buffer(what), x.numel, p, key0, key1);
  return record1("dropout", [x], out, (g) => {
    const gx = Tensor._empty(x.shape);
    native.cudaDropoutBackwardDev(gx._buffer(what), g._buffer(what), mask._buffer(what), x.numel, p);
    return [gx];
  });
}

/** ops.permute of a CUDA tensor (any dtype). */
export function permuteCuda(x: Tensor, p: number[], inverse: number[], back: (g: Tensor, inv: number[]) => Tensor): Tensor {
  const what = "ops.permute";
  const out = Tensor._empty(p.map((d) => x.shape[d]), x.dtype);
  native.cudaPermuteDev(out._buffer(what), x._buffer(what), ELEMENT_BYTES[x.dtype], x.shape, p);
  return record1("permute", [x], out, (g) => [back(g, inverse)]);
}
