// Seeded random numbers, reproducible across runs and platforms: xoshiro128** on 32-bit integer arithmetic
// (Math.imul), uniform floats from the top 24 bits, normals by Box-Muller with V8's own (platform-independent)
// Math.log/Math.cos. The same seed gives the same stream everywhere.

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A Generator's position: the four xoshiro128** state words and the cached Box-Muller sample (or null). */
export interface GeneratorState {
  words: [number, number, number, number];
  spare: number | null;
}

export class Generator {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;

  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  /** Restart the stream from `seed` (an integer; larger values are folded to 53 bits). */
  manualSeed(seed: number): this {
    if (!Number.isFinite(seed)) throw new RangeError(`manualSeed: seed must be a finite number, got ${seed}`);
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    const mix = splitmix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2d));
    this.s0 = mix();
    this.s1 = mix();
    this.s2 = mix();
    this.s3 = mix();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
    this.spare = null;
    return this;
  }

  /** The exact stream position (JSON-serialisable), for checkpoints that resume bit-exactly. */
  getState(): GeneratorState {
    return { words: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0], spare: this.spare };
  }

  /** Move to a position from getState(). @throws RangeError for a malformed state */
  setState(s: GeneratorState): this {
    if (!s || !Array.isArray(s.words) || s.words.length !== 4 || !s.words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) || (s.words as number[]).every((w) => w === 0) || !(s.spare === null || typeof s.spare === "number"))
      throw new RangeError(`Generator.setState: expected { words: [4 uint32, not all 0], spare: number | null }, got ${JSON.stringify(s)}`);
    [this.s0, this.s1, this.s2, this.s3] = s.words;
    this.spare = s.spare;
    return this;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), 24 bits of precision (exactly representable in float32). */
  uniform(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  fillUniform(out: Float32Array, low = 0, high = 1): Float32Array {
    const w = high - low;
    for (let i = 0; i < out.length; ++i) out[i] = low + w * this.uniform();
    return out;
  }

  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; ++i) out[i] = mean + std * this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The default generator used when no `generator` option is given. */
export const defaultGenerator = new Generator(0);

/** Seed the default generator (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}
