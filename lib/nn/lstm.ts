// nn.LSTM: a drop-in for torch.nn.LSTM (modules layer). Same constructor options, same state_dict keys and
// layouts (weight_ih_l{k} [4H, in], weight_hh_l{k} [4H, H], bias_ih_l{k}, bias_hh_l{k}; gate rows i, f, g, o),
// same call: forward(x, [h0, c0]?) -> [output, [h_n, c_n]]. Each layer is one input projection (GEMM) plus one
// fused native recurrence (ops.lstm with one head, weight_hh passed as R in its transposed layout).
import * as ops from "../ops";
import { Generator, defaultGenerator } from "../rng";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { kindOf } from "../ops/args";
import { checkConfigObject, checkInt, MAX_CONFIG_DEPTH, MAX_CONFIG_DIM } from "./config-check";
import { floatArg } from "./entry-checks";
import { Module } from "./module";

export interface LSTMOptions {
  input_size: number;
  hidden_size: number;
  /** Default 1. */
  num_layers?: number;
  /** Default true. */
  bias?: boolean;
  /** Input/output as [B, S, F] (true) or [S, B, F] (false, default, as PyTorch). */
  batch_first?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode. Default 0. */
  dropout?: number;
  /** Random source for the initialisation (U(-1/√H, 1/√H), as PyTorch) and dropout. Default: the global generator. */
  generator?: Generator;
}

export class LSTM extends Module {
  readonly input_size: number;
  readonly hidden_size: number;
  readonly num_layers: number;
  readonly bias: boolean;
  readonly batch_first: boolean;
  readonly dropout: number;
  private readonly generator: Generator;

  /**
   * @example
   *   const lstm = new nn.LSTM({ input_size: 28, hidden_size: 256, batch_first: true });
   *   const [out, [h, c]] = lstm.forward(x);   // x [B, S, 28] -> out [B, S, 256], h/c [1, B, 256]
   * @throws RangeError for non-positive sizes or dropout outside [0, 1)
   */
  constructor(options: LSTMOptions) {
    super();
    checkConfigObject("nn.LSTM", options);
    const { input_size, hidden_size } = options;
    for (const [k, v] of [["input_size", input_size], ["hidden_size", hidden_size], ["num_layers", options.num_layers ?? 1]] as const)
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`nn.LSTM: ${k} must be a positive integer, got ${String(v)}`);
    checkInt("nn.LSTM", "input_size", input_size, 1, MAX_CONFIG_DIM);
    checkInt("nn.LSTM", "hidden_size", hidden_size, 1, MAX_CONFIG_DIM);
    checkInt("nn.LSTM", "num_layers", options.num_layers ?? 1, 1, MAX_CONFIG_DEPTH);
    const dropout = options.dropout ?? 0;
    if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1)) throw new RangeError(`nn.LSTM: dropout must be in [0, 1), got ${String(dropout)}`);
    this.input_size = input_size;
    this.hidden_size = hidden_size;
    this.num_layers = options.num_layers ?? 1;
    this.bias = options.bias ?? true;
    this.batch_first = options.batch_first ?? false;
    this.dropout = dropout;
    this.generator = options.generator ?? defaultGenerator;
    const H = hidden_size;
    for (let l = 0; l < this.num_layers; ++l) {
      const inp = l === 0 ? input_size : H;
      this.registerParameter(`weight_ih_l${l}`, Tensor.zeros([4 * H, inp]));
      this.registerParameter(`weight_hh_l${l}`, Tensor.zeros([4 * H, H]));
      this.registerParameter(`bias_ih_l${l}`, this.bias ? Tensor.zeros([4 * H]) : null);
      this.registerParameter(`bias_hh_l${l}`, this.bias ? Tensor.zeros([4 * H]) : null);
    }
    this.resetParameters();
  }

  /** PyTorch's default: every parameter U(-1/√H, 1/√H). */
  resetParameters(): void {
    const k = 1 / Math.sqrt(this.hidden_size);
    for (const p of this.parameters()) this.generator.fillUniform(p.f32(), -k, k);
  }

  private param(name: string): Tensor | null {
    return this.parameterByKey(name);
  }

  /**
   * @param x [B, S, input_size] (batch_first) or [S, B, input_size]
   * @param state optional [h0, c0], each [num_layers, B, hidden_size]
   * @returns [output [B, S, H] or [S, B, H], [h_n, c_n] each [num_layers, B, H]]
   * @throws TypeError for a non-Tensor, non-float32 or detached x / h0 / c0, or a state that is not [h0, c0];
   *   RangeError for wrong shapes (every message starts with "nn.LSTM.forward: " and names the argument)
   */
  forward(x: Tensor, state?: [Tensor, Tensor] | null): [Tensor, [Tensor, Tensor]] {
    const op = "nn.LSTM.forward";
    floatArg(op, "x", x);
    if (x.ndim !== 3 || x.shape[2] !== this.input_size)
      throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected ${this.batch_first ? "[B, S" : "[S, B"}, input_size] with input_size = ${this.input_size}`);
    if (state != null && (!Array.isArray(state) || state.length !== 2))
      throw new TypeError(`${op}: state must be [h0, c0] (or null), got ${Array.isArray(state) ? `an array of ${state.length}` : kindOf(state)}`);
    let seq = this.batch_first ? x : ops.transpose(x, 0, 1); // [B, S, F]
    const [B] = seq.shape;
    const H = this.hidden_size, L = this.num_layers;
    if (state) {
      for (const [n, t] of [["h0", state[0]], ["c0", state[1]]] as const) {
        floatArg(op, n, t);
        if (t.ndim !== 3 || t.shape[0] !== L || t.shape[1] !== B || t.shape[2] !== H)
          throw new RangeError(`${op}: ${n} has shape ${formatShape(t.shape)}, expected [num_layers, B, hidden_size] = [${L}, ${B}, ${H}]`);
      }
    }
    const hs: Tensor[] = [], cs: Tensor[] = [];
    for (let l = 0; l < L; ++l) {
      // the input projection without its bias: both biases go to the recurrence, which adds one bias per step anyway
      // (b_ih + b_hh; each gets the summed gate gradient, as in torch), so the projection's output is written once
      // instead of bias-filled, then read and written again by the GEMM
      const gatesIn = ops.linear(seq, this.param(`weight_ih_l${l}`)!); // [B, S, 4H]
      const bih = this.param(`bias_ih_l${l}`), bhh = this.param(`bias_hh_l${l}`);
      const bias = bih && bhh ? ops.add(bih, bhh) : (bih ?? bhh ?? Tensor.zeros([4 * H], { device: seq.device }));
      // weight_hh [4H, H] is R's transposed layout as it is: no transpose per call (and its gradient comes back in place)
      const Rt = this.param(`weight_hh_l${l}`)!.reshape(1, 4 * H, H);
      const s0 = state ? ops.cat([ops.slice(state[0], 0, l, l + 1), ops.slice(state[1], 0, l, l + 1)], 0) : null;
      const out = ops.lstm(gatesIn, Rt, bias, s0, { transposedR: true });
      hs.push(ops.slice(out.state, 0, 0, 1));
      cs.push(ops.slice(out.state, 0, 1, 2));
      seq = out.y;
      if (l < L - 1 && this.dropout > 0 && this.training) seq = ops.dropout(seq, this.dropout, { generator: this.generator });
    }
    const output = this.batch_first ? seq : ops.transpose(seq, 0, 1);
    return [output, [ops.cat(hs, 0), ops.cat(cs, 0)]];
  }
}
