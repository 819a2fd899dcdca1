// Layer 3: tensors and the tape. Ops here are defined in the test with record()/record1(), so the tape's own
// logic (ordering, accumulation, broadcast reduction, hooks, noGrad, freeing) is checked in isolation.
import { strict as assert } from "assert";
import { backends, Generator, manualSeed, noGrad, ops, record, record1, reduceToShape, Tensor } from "../lib";
import { permuteOrView } from "../lib/ops/shape";
import { assertClose, gradCheck, randnGrad } from "./support/gradcheck";

// y = x * x elementwise, with its derivative: a tiny op written against the public hook.
function square(x: Tensor): Tensor {
  const out = Tensor.zeros(x.shape);
  const xs = x.f32(), o = out.data as Float32Array;
  for (let i = 0; i < o.length; ++i) o[i] = xs[i] * xs[i];
  return record1("square", [x], out, (g) => {
    const gx = Tensor.zeros(x.shape);
    const gs = g.f32(), d = gx.data as Float32Array;
    for (let i = 0; i < d.length; ++i) d[i] = 2 * xs[i] * gs[i];
    return [gx];
  });
}

// z = x + y with NumPy broadcasting; backward returns the broadcast gradient and lets the tape reduce it.
function addBroadcast(x: Tensor, y: Tensor, outShape: number[]): Tensor {
  const out = Tensor.zeros(outShape);
  const o = out.data as Float32Array;
  const xs = x.f32(), ys = y.f32();
  for (let i = 0; i < o.length; ++i) o[i] = xs[i % xs.length] + ys[i % ys.length];
  return record1("add", [x, y], out, (g) => [g, g]);
}

function sumAll(x: Tensor): Tensor {
  const xs = x.f32();
  let s = 0;
  for (let i = 0; i < xs.length; ++i) s += xs[i];
  return record1("sum", [x], Tensor.scalar(s), (g) => [Tensor.full(x.shape, g.item())]);
}

describe("30 tensor", () => {
  it("creates tensors with shapes, dtypes and values", () => {
    const t = Tensor.from([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, "float32");
    assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
    assert.equal(Tensor.zeros([2, 2], { dtype: "int64" }).data.constructor, BigInt64Array);
    assert.equal(Tensor.ones([3], { dtype: "int32" }).toFlatArray().join(","), "1,1,1");
    assert.equal(Tensor.scalar(2.5).item(), 2.5);
    assert.deepEqual(Tensor.arange(4).toFlatArray(), [0, 1, 2, 3]);
    assert.throws(() => Tensor.from([[1, 2], [3]]), RangeError);
    assert.throws(() => new Tensor(new Float32Array(5), [2, 3]), /storage has 5 elements, shape \[2, 3\] needs 6/);
    assert.throws(() => Tensor.zeros([2, -1]), RangeError);
    if (!backends().cuda.available) assert.throws(() => Tensor.zeros([2], { device: "cuda" }), /CUDA is not available/);
    assert.throws(() => Tensor.zeros([2], { dtype: "int32", requiresGrad: true }), TypeError);
    assert.throws(() => Tensor.zeros([2, 2]).item(), /item: tensor of shape \[2, 2\] has 4 elements/);
  });

  it("round-trips bfloat16 with round-to-nearest-even", () => {
    const x = Tensor.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 65504, 1e-30]);
    const b = x.to("bfloat16");
    assert.equal(b.dtype, "bfloat16");
    // bf16 keeps 8 significant bits: 1 + 2^-8 is a tie and rounds to even (1); 1 + 3*2^-8 rounds up to 1 + 2^-6
    const expect = [1, 1, 1 + 2 ** -6, -2.5, 65536, 1e-30];
    const back = b.to("float32").toFlatArray();
    back.forEach((v, i) => assert.ok(Math.abs(v - expect[i]) <= Math.abs(expect[i]) * 2 ** -8, `element ${i}: ${v} vs ${expect[i]}`));
  });

  it("draws reproducible random numbers from a seed", () => {
    manualSeed(42);
    const a = Tensor.randn([1000]).toFlatArray();
    manualSeed(42);
    const b = Tensor.randn([1000]).toFlatArray();
    assert.deepEqual(a, b);
    const c = Tensor.randn([1000], { generator: new Generator(43) }).toFlatArray();
    assert.notDeepEqual(a, c);
    const n = 200000;
    const big = Tensor.randn([n], { generator: new Generator(7) }).f32();
    let mean = 0, sq = 0;
    for (const v of big) { mean += v; sq += v * v; }
    mean /= n;
    const std = Math.sqrt(sq / n - mean * mean);
    assert.ok(Math.abs(mean) < 0.01 && Math.abs(std - 1) < 0.01, `mean ${mean}, std ${std}`);
    const u = Tensor.rand([n], { generator: new Generator(8), low: -2, high: 3 }).f32();
    assert.ok(u.every((v) => v >= -2 && v < 3));
    // a saved position resumes the same stream (including a cached Box-Muller sample)
    const g = new Generator(9);
    g.normal();
    const saved = JSON.parse(JSON.stringify(g.getState()));
    const ahead = [g.normal(), g.normal(), g.uniform()];
    assert.deepEqual([g.setState(saved).normal(), g.normal(), g.uniform()], ahead);
    assert.throws(() => g.setState({ words: [0, 0, 0, 0], spare: null }), RangeError);
  });

  it("reshapes as a view and permutes, slices and concatenates as copies", () => {
    const x = Tensor.from(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const r = x.reshape(6, -1);
    assert.deepEqual(r.shape, [6, 4]);
    assert.equal(r.data, x.data);
    const p = x.permute(2, 0, 1);
    assert.deepEqual(p.shape, [4, 2, 3]);
    // p[k, i, j] = x[i, j, k] = 12 i + 4 j + k
    assert.equal((p.toArray() as number[][][])[3][1][2], 12 + 8 + 3);
    const s = x.slice(2, 1, 4, 2);
    assert.deepEqual(s.shape, [2, 3, 2]);
    assert.deepEqual(s.toFlatArray().slice(0, 4), [1, 3, 5, 7]);
    const c = Tensor.cat([x, x.slice(1, 0, 1)], 1);
    assert.deepEqual(c.shape, [2, 4, 4]);
    assert.deepEqual(c.slice(1, 3, 4).toFlatArray(), x.slice(1, 0, 1).toFlatArray());
    assert.throws(() => x.reshape(5, -1), RangeError);
    assert.throws(() => x.permute(0, 0, 1), /repeat/);
    assert.throws(() => Tensor.cat([x, Tensor.zeros([2, 3, 5])], 1), /incompatible/);
    assert.throws(() => x.transpose(0, 3), /out of range/);
  });

  it("the layers' permuteOrView: ops.permute's values and gradients, a view exactly when only size-1 dimensions move", () => {
    const perms = (n: number): number[][] => (n === 1 ? [[0]] : perms(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)])));
    let views = 0, copies = 0;
    for (const shape of [[1, 1, 4, 8], [2, 1, 3, 1], [1, 5, 1, 1], [3, 1, 2], [1, 1, 1], [4, 2, 3, 5]])
      for (const dims of perms(shape.length)) {
        const x = Tensor.randn(shape, { requiresGrad: true, generator: new Generator(1) });
        const got = permuteOrView(x, dims), want = ops.permute(x, dims);
        assert.deepEqual(got.shape, want.shape);
        assert.deepEqual(got.toFlatArray(), want.toFlatArray(), `${shape} ${dims}`);
        const big = dims.filter((d) => shape[d] !== 1);
        const view = big.every((d, i) => i === 0 || big[i - 1] < d);
        assert.equal(got.data === x.data, view, `${shape} ${dims}: ${view ? "copied" : "a view"}`);
        if (view) views += 1; else copies += 1;
        const w = Tensor.randn(want.shape, { generator: new Generator(2) });
        ops.sum(ops.mul(got, w)).backward();
        const g1 = x.grad!.toFlatArray();
        x.grad = null;
        ops.sum(ops.mul(want, w)).backward();
        assert.deepEqual(g1, x.grad!.toFlatArray(), `gradient ${shape} ${dims}`);
      }
    assert.ok(views > 20 && copies > 20, `${views} views, ${copies} copies`);
    const x = Tensor.zeros([1, 2, 3]);
    for (const bad of [[0, 0, 1], [0, 1], [0, 1, 3]]) assert.throws(() => permuteOrView(x, bad), (e: Error) => e instanceof RangeError && /permute/.test(e.message), `${bad}`);
  });
});

describe("30 autograd", () => {
  it("accumulates gradients through shared subexpressions", () => {
    const x = Tensor.from([1, -2, 3], undefined, { requiresGrad: true });
    const y = square(x);
    const z = sumAll(addBroadcast(y, y, [3])); // z = 2 sum x^2 -> dz/dx = 4x
    z.backward();
    assert.deepEqual(x.grad!.toFlatArray(), [4, -8, 12]);
    sumAll(square(x)).backward(); // accumulates: + 2x
    assert.deepEqual(x.grad!.toFlatArray(), [6, -12, 18]);
  });

  it("reduces broadcast gradients to the input shape", () => {
    const a = Tensor.from([[1, 2, 3], [4, 5, 6]], undefined, { requiresGrad: true });
    const b = Tensor.from([[10, 20, 30]], undefined, { requiresGrad: true });
    const z = addBroadcast(a, b, [2, 3]);
    z.backward(Tensor.from([[1, 2, 3], [4, 5, 6]]));
    assert.deepEqual(b.grad!.shape, [1, 3]);
    assert.deepEqual(b.grad!.toFlatArray(), [5, 7, 9]);
    assert.deepEqual(reduceToShape(Tensor.ones([4, 2, 3]), [3]).toFlatArray(), [8, 8, 8]);
    assert.deepEqual(reduceToShape(Tensor.ones([4, 2, 3]), [2, 1]).toFlatArray(), [12, 12]);
    assert.throws(() => reduceToShape(Tensor.ones([2, 3]), [4]), RangeError);
  });

  it("records nothing under noGrad and after detach", async () => {
    const x = Tensor.from([1, 2], undefined, { requiresGrad: true });
    const y = noGrad(() => square(x));
    assert.equal(y.requiresGrad, false);
    const y2 = await noGrad(async () => square(x));
    assert.equal(y2.requiresGrad, false);
    assert.equal(square(x).requiresGrad, true);
    assert.equal(square(x).detach().requiresGrad, false);
    assert.throws(() => square(x.detach()).backward(), /does not require grad/);
  });

  it("runs hooks, multi-output nodes and frees the graph after backward", () => {
    const x = Tensor.from([1, 2, 3], undefined, { requiresGrad: true });
    const seen: number[][] = [];
    x.registerHook((g) => {
      seen.push(g.toFlatArray());
      return Tensor.full(g.shape, 1);
    });
    // two outputs: (2x, 3x)
    const a = Tensor.from(x.f32().map((v) => 2 * v));
    const b = Tensor.from(x.f32().map((v) => 3 * v));
    record("split", [x], [a, b], ([ga, gb]) => {
      const g = Tensor.zeros(x.shape);
      const d = g.data as Float32Array;
      for (let i = 0; i < d.length; ++i) d[i] = 2 * (ga?.f32()[i] ?? 0) + 3 * (gb?.f32()[i] ?? 0);
      return [g];
    });
    const loss = sumAll(b);
    loss.backward(undefined, { retainGraph: true });
    assert.deepEqual(seen, [[3, 3, 3]]);
    assert.deepEqual(x.grad!.toFlatArray(), [1, 1, 1]); // the hook replaced the gradient
    loss.backward();
    assert.throws(() => loss.backward(), /already freed/);
    assert.throws(() => square(x).backward(), /non-scalar/);
    assert.throws(() => square(x).backward(Tensor.ones([2])), /gradient has shape \[2\], expected \[3\]/);
  });

  it("backpropagates through a long chain without recursion limits", () => {
    const x = Tensor.from([1.0001], undefined, { requiresGrad: true });
    let y = x;
    for (let i = 0; i < 20000; ++i) y = y.reshape(1);
    sumAll(y).backward();
    assert.equal(x.grad!.item(), 1);
  });

  it("differentiates shape ops (finite differences in float64)", () => {
    // Each reference rearranges flat float64 arrays exactly as the op does.
    gradCheck({
      name: "permute",
      op: ([x]) => ops.permute(x, [1, 2, 0]),
      ref64: ([x]) => {
        const out = new Float64Array(24);
        let k = 0;
        for (let j = 0; j < 3; ++j) for (let l = 0; l < 4; ++l) for (let i = 0; i < 2; ++i) out[k++] = x[i * 12 + j * 4 + l];
        return out;
      },
      inputs: [randnGrad([2, 3, 4], 1)],
    });
    gradCheck({
      name: "slice+cat",
      op: ([x, y]) => ops.cat([ops.slice(x, 1, 1, 3), y], 1),
      ref64: ([x, y]) => {
        const out: number[] = [];
        for (let i = 0; i < 2; ++i) {
          out.push(x[i * 4 + 1], x[i * 4 + 2]);
          out.push(y[i * 2], y[i * 2 + 1]);
        }
        return Float64Array.from(out);
      },
      inputs: [randnGrad([2, 4], 2), randnGrad([2, 2], 3)],
    });
    const t = randnGrad([3, 2], 4);
    const v = t.transpose(0, 1).reshape(-1);
    v.backward(Tensor.arange(6));
    assertClose(t.grad!.f32(), [0, 3, 1, 4, 2, 5], "transpose gradient");
  });
});
