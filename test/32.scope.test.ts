// Layer 3: xlstm.scope (lib/scope.ts, lib/host-scope.ts; csrc/binding/host_memory.cc). On the CPU a scope releases
// the storage that tensors made inside it hold, when it ends, except what its result holds, leaf gradients,
// optimizer state and parameters; it keeps that storage off V8's external-memory count meanwhile, so a working set
// above 64 MB no longer forces a full collection; and it never releases memory that pending Promise calls use or that
// the caller allocated.
import { strict as assert } from "assert";
import { constants, PerformanceObserver } from "perf_hooks";
import { cuda, Generator, nn, ops, optim, scope, Tensor } from "../lib";
import { releaseLeafGradients } from "../lib/host-scope";
import { native } from "../lib/native";

const released = /memory was released: the xlstm\.scope that made it ended/;

function arrayBufferBytes(): number {
  return process.memoryUsage().arrayBuffers;
}

/** Major (mark-compact) collections while `fn` runs, from the gc performance entries delivered after it. */
async function majorCollections(fn: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) n++;
  });
  obs.observe({ entryTypes: ["gc"] });
  fn();
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return n;
}

/** A small model, its AdamW and a fixed batch: `step()` is one training step as train() runs it (returns the loss). */
function trainer(seed: number) {
  const gen = new Generator(seed);
  const w1 = Tensor.randn([96, 48], { generator: gen, std: 0.1, requiresGrad: true }), b1 = Tensor.zeros([96], { requiresGrad: true });
  const w2 = Tensor.randn([8, 96], { generator: gen, std: 0.1, requiresGrad: true }), b2 = Tensor.zeros([8], { requiresGrad: true });
  const params = [w1, b1, w2, b2];
  const model = { parameters: () => params, forward: (x: Tensor) => ops.linear(ops.gelu(ops.linear(x, w1, b1)), w2, b2) };
  const opt = new optim.AdamW(params, { lr: 1e-2 });
  const x = Tensor.randn([64, 48], { generator: gen }), target = Tensor.randn([64, 8], { generator: gen });
  const step = (): number => {
    const y = model.forward(x);
    const d = ops.sub(ops.tanh(y), target);
    const loss = ops.mean(ops.mul(d, d));
    loss.backward();
    opt.step();
    releaseLeafGradients(params.map((p) => p.grad!.data));  // as train() does (only what a scope made)
    opt.zeroGrad();
    return loss.item();
  };
  return { model, step };
}

describe("32 xlstm.scope: CPU tensor memory released when the scope ends", () => {
  it("releases what was made inside and not returned; keeps what the result holds (arrays, Maps, views, typed arrays)", () => {
    const x = Tensor.randn([64, 64], { generator: new Generator(1) });
    let escaped: Tensor | null = null;
    const before = ops.mul(ops.exp(x), x).toFlatArray();
    const r = scope(() => {
      const a = ops.exp(x);
      escaped = ops.add(a, 1);  // kept by other means than the result: released
      const y = ops.mul(a, x);
      return { list: [y.reshape([4096])], map: new Map([["y", y]]), raw: ops.neg(x).data as Float32Array };
    });
    assert.equal(escaped!.isDisposed, true);
    assert.throws(() => escaped!.data, released);
    assert.throws(() => ops.add(escaped!, 1), released);
    assert.deepEqual(r.list[0].toFlatArray(), before);
    assert.equal(r.map.get("y")!.isDisposed, false);
    assert.equal(r.raw.length, 4096);
    assert.equal(r.raw[5], -x.toFlatArray()[5]);
    assert.equal(x.isDisposed, false, "made before the scope");
  });

  it("frees the memory at once (no collection needed) and keeps a 128 MB working set off V8's external-memory count", async () => {
    const big = Tensor.ones([1 << 23]);  // 32 MB
    const base = arrayBufferBytes();
    const peak = scope(() => {
      ops.add(big, 1);
      ops.add(big, 2);
      return arrayBufferBytes();
    });
    // (a scavenge during the allocations may free older garbage, so the drop is measured from the peak)
    const after = arrayBufferBytes();
    assert.ok(peak - after >= 64e6, `the two 32 MB outputs were released at the scope's end (${peak - after} bytes)`);
    assert.ok(after - base < 1e6, `released at the scope's end: ${after - base} bytes left`);
    // V8's external-memory count (what forces full collections) does not hold a scope's storage
    const count0 = native.reportHostMemory(0);
    const inside = scope(() => {
      for (let j = 0; j < 4; ++j) ops.add(big, j);
      return native.reportHostMemory(0) - count0;
    });
    // (one-sided: a scavenge meanwhile may free older garbage and lower it; counted, the 128 MB would raise it)
    assert.ok(inside < 16e6, `the count rose by ${inside} bytes with 128 MB alive in the scope`);
    assert.ok(native.reportHostMemory(0) - count0 < 16e6, "and is no higher after it");
    // 6 scopes of 4 x 32 MB alive at once: counted, each would pass V8's 64 MB step and force a mark-compact
    const majors = await majorCollections(() => {
      for (let i = 0; i < 6; ++i)
        scope(() => {
          for (let j = 0; j < 4; ++j) ops.add(big, j);
        });
    });
    assert.ok(majors <= 2, `${majors} full collections`);  // counted: one a scope at least
    assert.ok(arrayBufferBytes() - base < 1e6);
  });

  it("training steps in scopes give the same losses and weights as without, and keep gradients, optimizer state and parameters", () => {
    const plain = trainer(5), scoped = trainer(5);
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < 4; ++i) {
      a.push(plain.step());
      b.push(scope(() => scoped.step()));
    }
    assert.deepEqual(b, a);
    const pa = plain.model.parameters(), pb = scoped.model.parameters();
    pa.forEach((p, i) => assert.deepEqual(pb[i].toFlatArray(), p.toFlatArray()));
    // a backward inside a scope leaves the leaves' gradients usable after it
    const m = scoped.model;
    scope(() => {
      ops.sum(m.forward(Tensor.ones([2, 48]))).backward();
    });
    for (const p of m.parameters()) assert.ok(p.grad && !p.grad.isDisposed && p.grad.toFlatArray().every(Number.isFinite));
  });

  it("releaseLeafGradients frees the gradients backward made in scopes (train() after each update) and nothing else", async () => {
    // 8 MB of weights: each step's gradients, left to the collector, pass V8's 64 MB step every ~8 steps
    const gen = new Generator(13);
    const w = Tensor.randn([1024, 2048], { generator: gen, std: 0.02, requiresGrad: true });
    const x = Tensor.randn([16, 2048], { generator: gen });
    const opt = new optim.SGD([w], { lr: 0.1 });
    const losses = (release: boolean) => {
      const out: number[] = [];
      for (let i = 0; i < 40; ++i) {
        out.push(scope(() => {
          const y = ops.linear(x, w);
          const l = ops.mean(ops.mul(y, y));
          l.backward();
          return l.item();
        }));
        opt.step();
        if (release) {
          const g = w.grad!;
          assert.ok(releaseLeafGradients([g.data]) >= 8e6);
          assert.equal(g.isDisposed, true);
        }
        opt.zeroGrad();
      }
      return out;
    };
    const w0 = w.toFlatArray();
    const kept = losses(false);
    (w.data as Float32Array).set(w0);
    let released: number[] = [];
    const majors = await majorCollections(() => {
      released = losses(true);
    });
    assert.deepEqual(released, kept);
    assert.ok(majors <= 2, `${majors} full collections over 40 steps`);  // left to the collector: ~5
    // a gradient made outside any scope, or an array of the caller's, is not the library's to free
    ops.sum(ops.linear(x, w)).backward();
    assert.equal(releaseLeafGradients([w.grad!.data, new Float32Array(4096)]), 0);
    assert.equal(w.grad!.isDisposed, false);
    opt.zeroGrad();
  });

  it("a module built inside a scope keeps its parameters", () => {
    const layer = { m: null as nn.Linear | null };
    scope(() => {
      layer.m = new nn.Linear(64, 64, true);
    });
    for (const p of layer.m!.parameters()) assert.equal(p.isDisposed, false);
    assert.equal(ops.linear(Tensor.ones([1, 64]), layer.m!.weight, layer.m!.bias).numel, 64);
  });

  it("nested scopes: the inner result moves to the outer scope, which releases it unless returned again", () => {
    const x = Tensor.ones([2048]);
    let inner: Tensor | null = null;
    const outer = scope(() => {
      inner = scope(() => ops.add(x, 1));
      assert.equal(inner.isDisposed, false);
      return ops.add(inner, 1);
    });
    assert.equal(inner!.isDisposed, true);
    assert.equal(outer.toFlatArray()[0], 3);
  });

  it("an error or a Promise result releases everything made inside", () => {
    const x = Tensor.ones([2048]);
    let made: Tensor | null = null;
    assert.throws(() => scope(() => {
      made = ops.add(x, 1);
      throw new Error("boom");
    }), /boom/);
    assert.equal(made!.isDisposed, true);
    assert.throws(() => scope(() => {
      made = ops.add(x, 1);
      return Promise.resolve(made);
    }), (e: Error) => e instanceof TypeError && /scope: fn returned a Promise/.test(e.message));
    assert.equal(made!.isDisposed, true);
  });

  it("never releases arrays the caller made, and cuda.scope leaves CPU tensors alone", () => {
    const own = new Float32Array(4096).fill(2);
    let wrapped: Tensor | null = null, cpu: Tensor | null = null;
    scope(() => {
      wrapped = Tensor.from(own);
    });
    assert.equal(wrapped!.isDisposed, false);
    assert.equal(own.length, 4096);
    cuda.scope(() => {
      cpu = ops.add(wrapped!, 1);
    });
    assert.equal(cpu!.isDisposed, false);
    assert.equal(cpu!.toFlatArray()[0], 3);
  });

  it("leaves memory that a pending Promise call uses to the collector, and the call's results stand", async () => {
    const M = 96, N = 80, K = 64;
    const a = Tensor.randn([M, K], { generator: new Generator(7) }), b = Tensor.randn([K, N], { generator: new Generator(8) });
    const want = ops.matmul(a, b).toFlatArray();
    let pending: Promise<void> | null = null, out: Tensor | null = null;
    scope(() => {
      out = Tensor.zeros([M, N]);  // recorded by the scope, and written by the pending call
      pending = native.gemmAsync(false, false, M, N, K, 1, a.data as Float32Array, b.data as Float32Array, 0, out.data as Float32Array) as unknown as Promise<void>;
    });
    assert.equal(out!.isDisposed, false, "pinned by the pending call");
    await pending;
    const got = out!.toFlatArray();
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), `element ${i}`));
    // once settled, the buffer is no longer pinned: releasing it detaches it
    const buf = (out!.data as Float32Array).buffer as ArrayBuffer, bytes = buf.byteLength;
    native.reportHostMemory(-bytes);
    assert.equal(native.releaseHostBuffers([buf], [bytes]), bytes);
    assert.equal(out!.isDisposed, true);
  });

  it("releaseHostBuffers refuses bad arguments by name and skips what cannot be detached", () => {
    assert.throws(() => native.releaseHostBuffers([new Float32Array(4) as unknown as ArrayBuffer], [16]), (e: Error) => e instanceof TypeError && /releaseHostBuffers: buffers\[0\]/.test(e.message));
    assert.throws(() => native.releaseHostBuffers([new ArrayBuffer(8)], []), (e: Error) => e instanceof RangeError && /1 buffers but 0 byte counts/.test(e.message));
    assert.throws(() => native.releaseHostBuffers([new ArrayBuffer(8)], [-1]), (e: Error) => e instanceof RangeError && /bytes\[0\]/.test(e.message));
    assert.throws(() => native.reportHostMemory(0.5), (e: Error) => e instanceof RangeError && /reportHostMemory: delta/.test(e.message));
    const wasm = new WebAssembly.Memory({ initial: 1 }).buffer;
    native.reportHostMemory(-wasm.byteLength);
    assert.equal(native.releaseHostBuffers([wasm, new ArrayBuffer(0)], [wasm.byteLength, 0]), 0);
    assert.equal(wasm.byteLength, 65536, "a WebAssembly memory cannot be detached: left alone");
  });

  it("repeated scoped training steps keep RSS and ArrayBuffer memory flat", function () {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) this.skip();  // .mocharc.json exposes it
    const t = trainer(11);
    for (let i = 0; i < 20; ++i) scope(() => t.step());
    gc!();
    const ab0 = arrayBufferBytes(), rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 200; ++i) scope(() => t.step());
    gc!();
    gc!();
    // V8 sweeps dead ArrayBuffers lazily, so a few MB may still be counted after gc(); keeping the steps' storage
    // would add ~30 MB (200 steps of ~150 KB)
    const dab = arrayBufferBytes() - ab0, drss = process.memoryUsage().rss - rss0;
    assert.ok(dab < 8e6, `ArrayBuffer bytes grew by ${dab}`);
    assert.ok(drss < 32e6, `RSS grew by ${drss}`);
  });
});
