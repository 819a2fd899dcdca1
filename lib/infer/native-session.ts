// The native inference sessions' shared surface (products layer): a handle from the binding (csrc/binding/infer.cc)
// that runs tokens through a model's fused step, one call at a time, synchronously or on a native worker thread.
// InferenceSession (xLSTMLMModel, CPU or GPU) and LargeInferenceSession (xLSTM Large on the GPU) extend it with their
// models' state layouts.
import { kindOf } from "../ops/args";
import { native } from "../native";

/** Using a session after dispose(). */
export class InferenceSessionDisposedError extends Error {
  readonly code = "XLSTM_DISPOSED";
  constructor(method: string, session = "InferenceSession") {
    super(`${session}.${method}: the session is disposed`);
    this.name = "InferenceSessionDisposedError";
  }
}

/** A call made while the session's stepAsync / prefillAsync is pending (the session runs one call at a time). */
export class InferenceSessionBusyError extends Error {
  readonly code = "XLSTM_BUSY";
  constructor(method: string, session = "InferenceSession") {
    super(`${session}.${method}: the session is busy with a stepAsync / prefillAsync call; await its promise first`);
    this.name = "InferenceSessionBusyError";
  }
}

/** Steps, prefill, reset and disposal of a native session handle; subclasses create the handle and map the state. */
export abstract class NativeSession {
  /** Batch rows B. */
  readonly batch: number;
  readonly vocabSize: number;
  /** Where the session runs: the device of the model's parameters at creation. */
  readonly device: "cpu" | "cuda";
  /** The class name errors start with. */
  protected abstract readonly kind: string;
  protected handle: object | null;
  private running = false; // a stepAsync / prefillAsync call is pending

  protected constructor(handle: object, batch: number, vocabSize: number, device: "cpu" | "cuda") {
    this.handle = handle;
    this.batch = batch;
    this.vocabSize = vocabSize;
    this.device = device;
  }

  /** Whether dispose() was called. */
  get disposed(): boolean {
    return this.handle === null;
  }

  /**
   * Bytes of native memory the session holds: its parameters' copies, recurrent state and scratch; for a device
   * session the device memory of its state and scratch (it borrows the model's weight buffers: none copied).
   */
  get nativeBytes(): number {
    return native.inferBytes(this.live("nativeBytes"));
  }

  /**
   * The decode steps' CUDA graphs of a device session (cuda.setSessionGraphs): "off", "on: N graphs" (N captured
   * so far: one per state-buffer parity a step started from; after a failed capture: "on: N graphs; capture failed
   * (k of 3, retrying | no more tries): <why>") or "failed: <why>" (three captures failed and none worked: steps
   * run eagerly until a kernel setting changes); "cpu" for a CPU session.
   */
  get cudaGraphs(): string {
    return native.inferGraphs(this.live("cudaGraphs"));
  }

  protected live(method: string): object {
    if (!this.handle) throw new InferenceSessionDisposedError(method, this.kind);
    if (this.running && method !== "nativeBytes") throw new InferenceSessionBusyError(method, this.kind);
    return this.handle;
  }

  /** Whether a stepAsync / prefillAsync call is pending (every other call but dispose and nativeBytes throws then). */
  get busy(): boolean {
    return this.running;
  }

  private async runAsync(h: object, tokens: Int32Array, S: number): Promise<Float32Array> {
    const logits = new Float32Array(this.batch * this.vocabSize);
    const done = native.inferRunAsync(h, logits, tokens, S); // tokens copied by the binding at the call
    this.running = true;
    try {
      await done;
    } finally {
      this.running = false;
    }
    return logits;
  }

  private checkTokens(method: string, tokens: Int32Array, n: number, what: string): void {
    if (!(tokens instanceof Int32Array)) throw new TypeError(`${this.kind}.${method}: tokens must be an Int32Array, got ${(tokens as object)?.constructor?.name ?? typeof tokens}`);
    if (tokens.length !== n) throw new RangeError(`${this.kind}.${method}: tokens has ${tokens.length} elements, expected ${what} = ${n}`);
    const V = this.vocabSize;
    for (let i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= V) throw new RangeError(`${this.kind}.${method}: tokens[${i}] = ${tokens[i]} is out of range [0, ${V}) (vocab_size = ${V})`);
  }

  /**
   * One generation step from the current state: one token per batch row.
   * @param tokens [B] token ids
   * @returns logits [B, V] (row-major), a fresh array
   * @throws TypeError (not an Int32Array), RangeError (wrong length, id out of range), InferenceSessionDisposedError
   * @example
   *   const s = createInferenceSession(model);
   *   let logits = s.prefill(prompt, prompt.length);
   *   for (let i = 0; i < 100; ++i) logits = s.step(Int32Array.of(argmax(logits)));
   */
  step(tokens: Int32Array): Float32Array {
    const h = this.live("step");
    this.checkTokens("step", tokens, this.batch, `B (batch)`);
    const logits = new Float32Array(this.batch * this.vocabSize);
    native.inferRun(h, logits, tokens, 1);
    return logits;
  }

  /**
   * Consumes S tokens per batch row from the current state (a prompt) and returns the logits of the last position.
   * Equivalent to S calls of step(), faster (the projections of up to ~256 rows run as matrix products).
   * @param tokens [B, S] token ids, row-major
   * @param S positions per batch row (>= 1)
   * @returns logits [B, V] of position S - 1
   */
  prefill(tokens: Int32Array, S: number): Float32Array {
    const h = this.live("prefill");
    if (!Number.isInteger(S) || S < 1) throw new RangeError(`${this.kind}.prefill: S must be a positive integer, got ${typeof S === "number" ? S : kindOf(S)}`);
    this.checkTokens("prefill", tokens, this.batch * S, `B*S (B=${this.batch}, S=${S})`);
    const logits = new Float32Array(this.batch * this.vocabSize);
    native.inferRun(h, logits, tokens, S);
    return logits;
  }

  /**
   * step() on a native worker thread: the event loop stays free while the token runs through the model. Until the
   * promise settles the session is busy (other calls but dispose() and nativeBytes throw InferenceSessionBusyError);
   * dispose() meanwhile frees the native memory once the run is done.
   * @returns logits [B, V], as step()
   */
  stepAsync(tokens: Int32Array): Promise<Float32Array> {
    try {
      const h = this.live("stepAsync");
      this.checkTokens("stepAsync", tokens, this.batch, `B (batch)`);
      return this.runAsync(h, tokens, 1);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** prefill() on a native worker thread (busy until it settles, as stepAsync). */
  prefillAsync(tokens: Int32Array, S: number): Promise<Float32Array> {
    try {
      const h = this.live("prefillAsync");
      if (!Number.isInteger(S) || S < 1) throw new RangeError(`${this.kind}.prefillAsync: S must be a positive integer, got ${typeof S === "number" ? S : kindOf(S)}`);
      this.checkTokens("prefillAsync", tokens, this.batch * S, `B*S (B=${this.batch}, S=${S})`);
      return this.runAsync(h, tokens, S);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Back to the zero state. */
  reset(): void {
    native.inferReset(this.live("reset"));
  }

  /**
   * Frees the native memory now (idempotent; with a stepAsync / prefillAsync pending: once that run is done, the
   * promise still resolving); any later call except dispose() throws InferenceSessionDisposedError.
   */
  dispose(): void {
    if (!this.handle) return;
    native.inferDispose(this.handle);
    this.handle = null;
  }
}
