// Tensor: dtype, shape, device and contiguous row-major storage (tensor + autograd layer). No math of its own:
// shape ops (reshape, permute, slice, cat) live in ops/shape.ts and are exposed here as methods for convenience.
import { backward as runBackward, GradNode, TensorHook } from "./autograd";
import { DeviceStorage, ELEMENT_BYTES, unscoped } from "./device";
import { hostScopeOpen, releaseHostFromScopes, trackHostStorage } from "./host-scope";
import { native } from "./native";
import { defaultGenerator, Generator } from "./rng";
import { formatShape, normalizeDim, numel, Shape } from "./shape";
import * as shapeOps from "./ops/shape";

export type DType = "float32" | "int32" | "int64" | "bfloat16";
export type Device = "cpu" | "cuda";
export type Storage = Float32Array | Int32Array | BigInt64Array | Uint16Array;

export interface TensorOptions {
  /** Default "float32". */
  dtype?: DType;
  /** Default "cpu". */
  device?: Device;
  /** Default false. */
  requiresGrad?: boolean;
}

export interface RandomOptions extends TensorOptions {
  /** Random stream; default: the global generator seeded by manualSeed(). */
  generator?: Generator;
}

let nextId = 1;

// An optional cap on the elements new tensors may allocate (see withElementBudget).
let budget: { left: number; what: string; limit: number } | null = null;

function charge(n: number): void {
  if (!budget) return;
  budget.left -= n;
  if (budget.left < 0)
    throw new RangeError(`${budget.what}: needs more than ${budget.limit} elements of tensor storage, more than it is allowed (a config asking for a bigger model than its tensors hold?)`);
}

/**
 * Run `fn` with new tensor storage capped at `limit` elements in total; a larger allocation throws a RangeError
 * naming `what` before any memory is taken. Used when building a model from an untrusted config: the config
 * cannot make the process allocate more than the checkpoint's own size justifies.
 */
export function withElementBudget<T>(limit: number, what: string, fn: () => T): T {
  const outer = budget;
  budget = { left: limit, what, limit };
  try {
    return fn();
  } finally {
    budget = outer;
  }
}

/**
 * @internal Float32 storage of n elements with undefined contents (Buffer.allocUnsafeSlow: its own ArrayBuffer,
 * offset 0, not zero-filled); small sizes are zeroed as usual (the saving is in the large outputs).
 */
export function uninitF32(n: number): Float32Array {
  if (poisonUninit) return tracked(new Float32Array(n).fill(NaN));
  if (n < 1024) return new Float32Array(n);
  const b = Buffer.allocUnsafeSlow(n * 4);
  return tracked(new Float32Array(b.buffer, b.byteOffset, n));
}

/**
 * @internal `data` (fresh storage an op made), recorded in the innermost open xlstm.scope (lib/host-scope.ts) if
 * there is one, so that the scope releases it at its end unless its result holds it.
 */
export function tracked<T extends ArrayBufferView>(data: T): T {
  if (hostScopeOpen()) trackHostStorage(data);
  return data;
}

/** Whether host storage of `numel` elements was released (its ArrayBuffer detached by an xlstm.scope). */
function hostReleased(data: Storage, numel: number): boolean {
  return data.length === 0 && numel > 0;
}

// NaN-filled instead (XLSTM_POISON_UNINIT=1 or _setPoisonUninit): an element a kernel fails to write shows up
let poisonUninit = process.env.XLSTM_POISON_UNINIT === "1";

/** @internal Tests: fill uninitialised storage with NaN (true) or leave it undefined (false); returns the setting before. */
export function _setPoisonUninit(on: boolean): boolean {
  const before = poisonUninit;
  poisonUninit = on;
  return before;
}

/** @internal Zeroed float32 storage of n elements, recorded in the innermost open xlstm.scope (as Tensor.zeros's). */
export function zeroedF32(n: number): Float32Array {
  return tracked(new Float32Array(n));
}

const storageOf: Record<DType, (n: number) => Storage> = {
  float32: zeroedF32,
  int32: (n) => tracked(new Int32Array(n)),
  int64: (n) => tracked(new BigInt64Array(n)),
  bfloat16: (n) => tracked(new Uint16Array(n)),
};

function dtypeOfStorage(data: Storage): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Uint16Array) return "bfloat16";
  throw new TypeError(`Tensor: unsupported storage ${(data as object)?.constructor?.name}`);
}

function checkDevice(device: Device | undefined, what: string): Device {
  const d = device ?? "cpu";
  if (d !== "cpu" && d !== "cuda") throw new TypeError(`${what}: device must be "cpu" or "cuda", got ${String(d)}`);
  return d;
}

/** `t` with requiresGrad set as `options` ask (the CUDA paths of the factories build the tensor first). */
function withRequiresGrad(t: Tensor, options: TensorOptions): Tensor {
  return options.requiresGrad ? t.requiresGrad_() : t;
}

/** Smallest and largest value of integer host data (null for float data or no elements). */
export function intRangeOf(data: Storage): { min: number; max: number } | null {
  if (!(data instanceof Int32Array || data instanceof BigInt64Array) || data.length === 0) return null;
  let min = Infinity, max = -Infinity;
  if (data instanceof Int32Array) {
    for (let i = 0; i < data.length; ++i) {
      const v = data[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
  } else {
    let lo = data[0], hi = data[0];
    for (let i = 1; i < data.length; ++i) {
      const v = data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    min = Number(lo);
    max = Number(hi);
  }
  return { min, max };
}

/** Host storage -> new device storage (synchronous copy); integer contents keep their range (DeviceStorage.intRange). */
function upload(data: Storage): DeviceStorage {
  const d = new DeviceStorage(data.byteLength);
  try {
    native.cudaUpload(d.handle("upload"), 0, data);
  } catch (e) {
    d.dispose();
    throw e;
  }
  d.intRange = intRangeOf(data);
  return d;
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays NaN. */
export function floatToBf16(out: Uint16Array, src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; ++i) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 bits -> float32 (exact). */
export function bf16ToFloat(out: Float32Array, src: Uint16Array): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; ++i) u[i] = src[i] << 16;
  return out;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  /** @internal host storage (CPU tensors) */
  private readonly _host: Storage | null;
  /** @internal device storage (CUDA tensors) */
  readonly _device: DeviceStorage | null;
  /** @internal element count */
  private readonly _numel: number;
  /** Whether gradients flow to this tensor. Set on leaves you want `.grad` for. */
  requiresGrad: boolean;
  /** Accumulated gradient (leaves only), filled by backward(). */
  grad: Tensor | null = null;
  /** @internal the op that produced this tensor, if recorded on the tape */
  _node: GradNode | null = null;
  /** @internal which output of `_node` this tensor is */
  _outputIndex = 0;
  /** @internal hooks run on this tensor's gradient */
  _hooks: TensorHook[] = [];

  /**
   * A tensor over `data` (shared, not copied) with `shape`. With `device: "cuda"` the values are copied to the GPU
   * instead (Error when CUDA is not available).
   */
  constructor(data: Storage, shape: Shape, options: TensorOptions = {}) {
    const n = numel(shape, "Tensor shape");
    const dtype = dtypeOfStorage(data);
    if (options.dtype && options.dtype !== dtype)
      throw new TypeError(`Tensor: storage ${data.constructor.name} holds ${dtype}, but dtype ${options.dtype} was asked`);
    if (data.length !== n)
      throw new RangeError(`Tensor: storage has ${data.length} elements, shape ${formatShape(shape)} needs ${n}`);
    this.device = checkDevice(options.device, "Tensor");
    this._host = this.device === "cpu" ? data : null;
    this._device = this.device === "cpu" ? null : upload(data);
    this._numel = n;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.requiresGrad = !!options.requiresGrad;
    if (this.requiresGrad && dtype !== "float32")
      throw new TypeError(`Tensor: only float32 tensors can require gradients, got ${dtype}`);
  }

  // ---- creation -------------------------------------------------------------------------------------------

  static zeros(shape: Shape, options: TensorOptions = {}): Tensor {
    const n = numel(shape, "zeros shape");
    charge(n);
    const dtype = options.dtype ?? "float32";
    if (checkDevice(options.device, "zeros") === "cuda") return withRequiresGrad(Tensor._empty(shape, dtype, true), options);
    return new Tensor(storageOf[dtype](n), shape, options);
  }

  /**
   * @internal A float32 CPU tensor whose contents are undefined (not zeroed): for op outputs that a native kernel
   * writes in full. Zeroing fresh storage costs a pass over it on the main thread while the compute threads wait
   * (a W2 training step allocates ~240 MB of such outputs).
   */
  static _uninit(shape: Shape): Tensor {
    const n = numel(shape, "Tensor shape");
    charge(n);
    return new Tensor(uninitF32(n), shape);
  }

  /** @internal A CUDA tensor of `shape` over fresh device memory (zeroed when `zero`, else undefined contents). */
  static _empty(shape: Shape, dtype: DType = "float32", zero = false): Tensor {
    const n = numel(shape, "Tensor shape");
    return Tensor._wrap(new DeviceStorage(n * ELEMENT_BYTES[dtype], zero), shape, dtype);
  }

  /** @internal A CUDA tensor over existing device storage (shared, not copied). */
  static _wrap(storage: DeviceStorage, shape: Shape, dtype: DType): Tensor {
    const t = Object.create(Tensor.prototype) as Tensor;
    const n = numel(shape, "Tensor shape");
    if (storage.bytes < n * ELEMENT_BYTES[dtype])
      throw new RangeError(`Tensor: device storage has ${storage.bytes} bytes, shape ${formatShape(shape)} of ${dtype} needs ${n * ELEMENT_BYTES[dtype]}`);
    Object.assign(t, {
      id: nextId++, shape: Object.freeze([...shape]), dtype, device: "cuda", _host: null, _device: storage, _numel: n,
      requiresGrad: false, grad: null, _node: null, _outputIndex: 0, _hooks: [],
    });
    return t;
  }

  static full(shape: Shape, value: number, options: TensorOptions = {}): Tensor {
    if (checkDevice(options.device, "full") === "cuda") {
      // float32: filled on the device (zeros, then fma(-1, +0, value) = value, -0 included), so that no host copy waits for the
      // GPU's queue (loss.backward() seeds its gradient this way); other dtypes and non-finite values are made on the
      // host and copied
      const host = () => withRequiresGrad(Tensor.full(shape, value, { ...options, device: "cpu", requiresGrad: false }).to("cuda"), options);
      if ((options.dtype ?? "float32") !== "float32") return host();
      const v = new Float32Array(1).fill(value)[0];  // the host path's conversion (TypedArray fill)
      if (!Number.isFinite(v)) return host();
      const t = Tensor.zeros(shape, { device: "cuda" });
      if (t._numel > 0 && !Object.is(v, 0)) native.cudaUnaryDev("affine", t._buffer("Tensor.full"), t._buffer("Tensor.full"), t._numel, -1, v);
      return withRequiresGrad(t, options);
    }
    const t = Tensor.zeros(shape, options);
    if (t.data instanceof BigInt64Array) t.data.fill(BigInt(Math.trunc(value)));
    else if (t.data instanceof Uint16Array) floatToBf16(t.data, new Float32Array(t.data.length).fill(value));
    else t.data.fill(value);
    return t;
  }

  static ones(shape: Shape, options: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 1, options);
  }

  /** Normal(mean, std) samples from the seeded generator (float32). */
  static randn(shape: Shape, options: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
    const n = numel(shape, "randn shape");
    charge(n);
    const data = new Float32Array(n);
    // drawn on the CPU and copied over on device "cuda": the same values for the same seed on either device
    (options.generator ?? defaultGenerator).fillNormal(data, options.mean ?? 0, options.std ?? 1);
    return new Tensor(data, shape, { ...options, dtype: "float32" });
  }

  /** Uniform [low, high) samples from the seeded generator (float32). */
  static rand(shape: Shape, options: RandomOptions & { low?: number; high?: number } = {}): Tensor {
    const n = numel(shape, "rand shape");
    charge(n);
    const data = new Float32Array(n);
    (options.generator ?? defaultGenerator).fillUniform(data, options.low ?? 0, options.high ?? 1);
    return new Tensor(data, shape, { ...options, dtype: "float32" });
  }

  /** [0, 1, ..., n-1] as float32 (or the dtype asked). */
  static arange(n: number, options: TensorOptions = {}): Tensor {
    if (checkDevice(options.device, "arange") === "cuda") return withRequiresGrad(Tensor.arange(n, { ...options, device: "cpu", requiresGrad: false }).to("cuda"), options);
    const t = Tensor.zeros([n], options);
    for (let i = 0; i < n; ++i) {
      if (t.data instanceof BigInt64Array) t.data[i] = BigInt(i);
      else t.data[i] = i;
    }
    if (t.data instanceof Uint16Array) floatToBf16(t.data, Float32Array.from({ length: n }, (_, i) => i));
    return t;
  }

  /**
   * From a typed array (shared, not copied) or a (nested) array of numbers (copied).
   * @example Tensor.from([[1, 2], [3, 4]])  // float32 [2, 2]
   */
  static from(data: Storage | ArrayLike<number> | number[][] | number[][][], shape?: Shape, options: TensorOptions = {}): Tensor {
    if (ArrayBuffer.isView(data)) {
      const storage = data as Storage;
      return new Tensor(storage, shape ?? [storage.length], { ...options, dtype: dtypeOfStorage(storage) });
    }
    const inferred: number[] = [];
    let probe: unknown = data;
    while (Array.isArray(probe)) {
      inferred.push(probe.length);
      probe = probe[0];
    }
    const flat = (data as unknown[]).flat(Infinity) as number[];
    for (let i = 0; i < flat.length; ++i)
      if (typeof flat[i] !== "number") throw new TypeError(`Tensor.from: element ${i} is ${typeof flat[i]}, expected number`);
    const s = shape ?? inferred;
    if (numel(s) !== flat.length)
      throw new RangeError(`Tensor.from: ${flat.length} values do not fill shape ${formatShape(s)} (ragged nested array?)`);
    const dtype = options.dtype ?? "float32";
    if (checkDevice(options.device, "Tensor.from") === "cuda") return withRequiresGrad(Tensor.from(data, shape, { ...options, device: "cpu", requiresGrad: false }).to("cuda"), options);
    const t = Tensor.zeros(s, { ...options, dtype });
    if (t.data instanceof BigInt64Array) flat.forEach((v, i) => ((t.data as BigInt64Array)[i] = BigInt(Math.trunc(v))));
    else if (t.data instanceof Uint16Array) floatToBf16(t.data, Float32Array.from(flat));
    else t.data.set(flat);
    return t;
  }

  /** A 0-d float32 tensor. */
  static scalar(value: number, options: TensorOptions = {}): Tensor {
    return Tensor.full([], value, options);
  }

  // ---- properties -----------------------------------------------------------------------------------------

  get ndim(): number {
    return this.shape.length;
  }

  get numel(): number {
    return this._numel;
  }

  /**
   * Contiguous row-major host storage (bfloat16 as raw bits in a Uint16Array). CPU tensors only: a CUDA tensor's
   * values live on the GPU, so this throws; read them with toFlatArray(), or move the tensor with cpu().
   */
  get data(): Storage {
    if (this._host) {
      if (hostReleased(this._host, this._numel))
        throw new Error(`Tensor.data: this tensor's memory was released: the xlstm.scope that made it ended (return it from the scope to keep it), or its ArrayBuffer was detached`);
      return this._host;
    }
    throw new Error(
      this._device?.disposed
        ? `Tensor.data: this CUDA tensor was already released (dispose() or a cuda.scope that ended)`
        : `Tensor.data: this tensor lives on the GPU (device "cuda"); copy it to the CPU with .cpu() or read it with .toFlatArray()`,
    );
  }

  /** @internal the device buffer of a CUDA tensor (Error naming `what` for CPU or released tensors). */
  _buffer(what: string) {
    if (!this._device) throw new TypeError(`${what}: expected a CUDA tensor, got one on the CPU`);
    return this._device.handle(what);
  }

  /**
   * @internal The range of a CUDA integer tensor's values when known without reading the GPU (uploaded from the host:
   * DeviceStorage.intRange); null otherwise (CPU tensors included).
   */
  _intRange(): { min: number; max: number } | null {
    return this._device?.intRange ?? null;
  }

  /** @internal Takes this CUDA tensor's storage out of every open cuda.scope (process-wide caches). */
  _unscoped(): void {
    if (this._device) unscoped(this._device);
  }

  /**
   * Whether this tensor's memory was released: a CUDA tensor's by dispose() or a cuda.scope / xlstm.scope that
   * ended, a CPU tensor's by an xlstm.scope that ended.
   */
  get isDisposed(): boolean {
    if (this._device) return this._device.disposed;
    return !!this._host && hostReleased(this._host, this._numel);
  }

  /**
   * Releases a CUDA tensor's device memory now (idempotent); using the tensor afterwards is an Error. Tensors that
   * share the storage (detach, reshape) are released with it. Does nothing for CPU tensors (garbage collection
   * frees host memory).
   */
  dispose(): void {
    this._device?.dispose();
  }

  /** Size of one dimension (negative counts from the end). */
  size(dim: number): number {
    return this.shape[normalizeDim(dim, this.ndim, "size")];
  }

  /** True when this tensor was produced by a recorded op (not a leaf). */
  get isLeaf(): boolean {
    return this._node === null;
  }

  /** The float32 storage; TypeError for other dtypes or CUDA tensors (names the op via `what`). */
  f32(what = "tensor"): Float32Array {
    if (this.device !== "cpu") throw new TypeError(`${what}: expected a CPU tensor, got one on ${this.device} (this op has no CUDA kernel yet: move the tensor with .cpu())`);
    if (!(this.data instanceof Float32Array)) throw new TypeError(`${what}: expected a float32 tensor, got ${this.dtype}`);
    return this.data;
  }

  // ---- reading values -------------------------------------------------------------------------------------

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new RangeError(`item: tensor of shape ${formatShape(this.shape)} has ${this.numel} elements, expected 1`);
    return this.toFlatArray()[0];
  }

  /** All values as a flat number array (bfloat16 widened, int64 converted with Number()). */
  toFlatArray(): number[] {
    if (this.device !== "cpu") return this.cpu().toFlatArray();
    if (this.data instanceof BigInt64Array) return Array.from(this.data, (v) => Number(v));
    if (this.data instanceof Uint16Array) return Array.from(bf16ToFloat(new Float32Array(this.numel), this.data));
    return Array.from(this.data as Float32Array | Int32Array);
  }

  /** Values as nested arrays following the shape (a number for a 0-d tensor). */
  toArray(): number | unknown[] {
    const flat = this.toFlatArray();
    if (this.ndim === 0) return flat[0];
    const build = (dim: number, offset: number): unknown[] => {
      const n = this.shape[dim];
      const inner = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      const out: unknown[] = new Array(n);
      for (let i = 0; i < n; ++i) out[i] = dim === this.ndim - 1 ? flat[offset + i] : build(dim + 1, offset + i * inner);
      return out;
    };
    return build(0, 0);
  }

  // ---- conversion -----------------------------------------------------------------------------------------

  /**
   * A copy in another dtype (float32 <-> bfloat16 <-> int32/int64; float -> int truncates), or on another device
   * ("cpu" / "cuda"; same values, cut off from the tape). The tensor itself when nothing changes.
   */
  to(target: DType | Device): Tensor {
    if (target === "cpu" || target === "cuda") return this.toDevice(target);
    if (!Object.hasOwn(storageOf, target))
      throw new TypeError(`Tensor.to: expected a dtype (${Object.keys(storageOf).join(", ")}) or a device ("cpu", "cuda"), got ${JSON.stringify(target)}`);
    const dtype = target;
    if (dtype === this.dtype) return this;
    if (this.device !== "cpu") return this.cpu().to(dtype).to(this.device);
    const out = Tensor.zeros(this.shape, { dtype });
    // float32 <-> bfloat16 straight between the typed arrays (model weights: no JS number arrays on the way)
    if (out.data instanceof Uint16Array && this.data instanceof Float32Array) native.bf16FromF32(out.data, this.data);
    else if (out.data instanceof Float32Array && this.data instanceof Uint16Array) native.bf16ToF32(out.data, this.data);
    else if (out.data instanceof Uint16Array) floatToBf16(out.data, Float32Array.from(this.toFlatArray()));
    else if (out.data instanceof BigInt64Array) {
      const src = this.toFlatArray();
      for (let i = 0; i < src.length; ++i) out.data[i] = BigInt(Math.trunc(src[i]));
    } else if (out.data instanceof Int32Array) {
      const src = this.toFlatArray();
      for (let i = 0; i < src.length; ++i) out.data[i] = Math.trunc(src[i]);
    } else (out.data as Float32Array).set(this.toFlatArray());
    return out;
  }

  /** This tensor's values on the CPU (the tensor itself when it is there). */
  cpu(): Tensor {
    return this.toDevice("cpu");
  }

  /** This tensor's values on the GPU (the tensor itself when it is there). Error when CUDA is not available. */
  cuda(): Tensor {
    return this.toDevice("cuda");
  }

  private toDevice(device: Device): Tensor {
    checkDevice(device, "Tensor.to");
    if (device === this.device) return this;
    if (device === "cuda") return new Tensor(this.data, this.shape, { device: "cuda" });
    const out = storageOf[this.dtype](this._numel);
    native.cudaDownload(this._buffer("Tensor.cpu"), 0, out);
    return new Tensor(out, this.shape);
  }

  /**
   * @internal Moves this tensor's values to `device` in place (the object stays the same, so modules and optimizers
   * keep their references; Module.to uses it). The old device memory is released. Leaves only.
   */
  _moveInPlace(device: Device): void {
    checkDevice(device, "Module.to");
    if (device === this.device) return;
    if (!this.isLeaf) throw new Error("Module.to: only leaf tensors (parameters) can move in place");
    this.takeStorage(this.toDevice(device));
  }

  /** Takes `src`'s storage, device and dtype (the old device memory released; the gradient cleared). */
  private takeStorage(src: Tensor): void {
    const self = this as unknown as { _host: Storage | null; _device: DeviceStorage | null; device: Device; dtype: DType };
    const old = this._device;
    // a parameter's storage outlives any scope open now (Module.to, setWeightDtype inside one)
    if (src._device) src._device.leaveScopes();
    else releaseHostFromScopes(src._host!);
    self._host = src._host;
    self._device = src._device;
    self.device = src.device;
    self.dtype = src.dtype;
    old?.dispose();
    this.grad = null;
  }

  /**
   * @internal Converts this leaf's storage to another float dtype in place, on its device (the object stays the same,
   * so modules keep their references; xLSTMLarge.setWeightDtype uses it). A bfloat16 tensor cannot require grad:
   * requiresGrad becomes false, and true again on the way back to float32. The old device memory is released.
   * `keepValues` false: fresh zeros of the new dtype instead of converted values (nothing read: for a tensor about to
   * be overwritten, e.g. a parameter of a module that a checkpoint will fill).
   */
  _castInPlace(dtype: "float32" | "bfloat16", keepValues = true): void {
    if (dtype === this.dtype) return;
    if (!this.isLeaf) throw new Error("Tensor._castInPlace: only leaf tensors (parameters) can change dtype in place");
    if (this.dtype !== "float32" && this.dtype !== "bfloat16") throw new TypeError(`Tensor._castInPlace: ${this.dtype} is not a float dtype`);
    this.takeStorage(keepValues ? this.to(dtype) : Tensor.zeros(this.shape, { dtype, device: this.device }));
    this.requiresGrad = dtype === "float32";
  }

  /** @internal Overwrites this tensor's values with `src`'s (same shape and numel; any devices). */
  _copyFrom(src: Tensor): void {
    if (src.numel !== this.numel || src.dtype !== this.dtype) throw new RangeError(`copy: ${src.dtype} ${formatShape(src.shape)} into ${this.dtype} ${formatShape(this.shape)}`);
    const bytes = this._numel * ELEMENT_BYTES[this.dtype];
    if (this._device && src._device) native.cudaCopyBuffer(this._buffer("copy"), 0, src._buffer("copy"), 0, bytes);
    else if (this._device) native.cudaUpload(this._buffer("copy"), 0, src.data);
    else if (src._device) native.cudaDownload(src._buffer("copy"), 0, this.data);
    else (this.data as Float32Array).set(src.data as Float32Array);
    // the storage's integer range: the host source's, else unknown (its other views see the new contents too)
    if (this._device) this._device.intRange = src._device ? null : intRangeOf(src.data);
  }

  /** @internal The same storage under another shape of the same size (no tape entry). */
  _viewAs(shape: Shape): Tensor {
    if (this._device) return Tensor._wrap(this._device, shape, this.dtype);
    return new Tensor(this.data, shape);
  }

  /** A tensor sharing this storage, cut off from the tape. */
  detach(): Tensor {
    if (this._device) return Tensor._wrap(this._device, this.shape, this.dtype);
    return new Tensor(this.data, this.shape, { device: this.device });
  }

  /** A deep copy of the storage, cut off from the tape. */
  clone(): Tensor {
    if (this._device) {
      const t = Tensor._empty(this.shape, this.dtype);
      native.cudaCopyBuffer(t._buffer("Tensor.clone"), 0, this._buffer("Tensor.clone"), 0, this._numel * ELEMENT_BYTES[this.dtype]);
      return t;
    }
    return new Tensor(this.data.slice() as Storage, this.shape, { device: this.device });
  }

  // ---- autograd -------------------------------------------------------------------------------------------

  /**
   * Reverse-mode gradient of this tensor w.r.t. every leaf that requires grad, accumulated into `.grad`.
   * A non-scalar tensor needs `gradient` (the cotangent, same shape).
   */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    runBackward(this, gradient, options);
  }

  /** Run `hook(grad)` when this tensor's gradient is computed; a returned tensor replaces the gradient. */
  registerHook(hook: TensorHook): () => void {
    this._hooks.push(hook);
    return () => {
      const i = this._hooks.indexOf(hook);
      if (i >= 0) this._hooks.splice(i, 1);
    };
  }

  /** Set requiresGrad in place (leaves only); returns this. */
  requiresGrad_(flag = true): this {
    if (!this.isLeaf) throw new Error("requiresGrad_: only leaf tensors can change requiresGrad");
    if (flag && this.dtype !== "float32") throw new TypeError(`requiresGrad_: only float32 tensors can require gradients, got ${this.dtype}`);
    this.requiresGrad = flag;
    return this;
  }

  // ---- shape ops (differentiable; see ops/shape.ts) -------------------------------------------------------

  /** Same storage, new shape (one size may be -1). */
  reshape(...shape: number[] | [Shape]): Tensor {
    return shapeOps.reshape(this, (Array.isArray(shape[0]) ? shape[0] : shape) as number[]);
  }

  view(...shape: number[] | [Shape]): Tensor {
    return this.reshape(...shape);
  }

  /** Swap two dimensions (copies). */
  transpose(dim0: number, dim1: number): Tensor {
    return shapeOps.transpose(this, dim0, dim1);
  }

  /** Reorder dimensions (copies). */
  permute(...dims: number[] | [Shape]): Tensor {
    return shapeOps.permute(this, (Array.isArray(dims[0]) ? dims[0] : dims) as number[]);
  }

  /** Elements start, start+step, ... < end along `dim` (copies; negative indices count from the end). */
  slice(dim: number, start: number, end?: number, step = 1): Tensor {
    return shapeOps.slice(this, dim, start, end, step);
  }

  /** Concatenate along `dim`. */
  static cat(tensors: Tensor[], dim = 0): Tensor {
    return shapeOps.cat(tensors, dim);
  }

  toString(): string {
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}, ${this.device}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}
