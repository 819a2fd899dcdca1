// Layer 5: safetensors I/O (lib/io). The golden fixtures (everything taken from manifest.json), bit-exact round
// trips for every dtype, the exact byte layout (reference vectors from huggingface/safetensors' own tests), atomic
// writes under failure, every header corruption, file lifecycle, memory use and event-loop freedom.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  CorruptFileError,
  SAFETENSORS_DTYPES,
  Tensor,
  openSafetensors,
  openSafetensorsAsync,
  readSafetensors,
  readSafetensorsAsync,
  serializeSafetensors,
  writeFileAtomic,
  writeFileAtomicAsync,
  writeSafetensors,
  writeSafetensorsAsync,
} from "../lib";
import type { RawTensor, SafetensorsDType } from "../lib";
import { describeFixtures, fixturePath, repoRoot } from "./support/fixtures";

// ---- helpers ------------------------------------------------------------------------------------------------

const ELEM: Record<string, number> = { BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8 };

/** Deterministic bytes (xorshift32), independent of the library's RNG. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; ++i) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.compare(bytesOf(a), bytesOf(b)) === 0;
}

/** A file [u64 N][header, optionally space-padded to 8][data]; header given as a string, bytes or an object. */
function buildFile(header: string | object | Uint8Array, data: Uint8Array = new Uint8Array(0), pad = true): Buffer {
  let hb = header instanceof Uint8Array ? Buffer.from(header) : Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  if (pad && hb.length % 8) hb = Buffer.concat([hb, Buffer.alloc(8 - (hb.length % 8), 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(hb.length));
  return Buffer.concat([prefix, hb, data]);
}

function tmpFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith(".tmp"));
}

/** Half a unit in the last decimal digit of x as JSON prints it (0 for 0), plus float32 rounding. */
function printedTolerance(x: number): number {
  if (x === 0) return 0;
  const [mant, exp] = x.toExponential().split("e");
  const digits = mant.replace("-", "").replace(".", "").length;
  return 0.5 * 10 ** (Number(exp) - digits + 1) + Math.abs(x) * 2 ** -23;
}

/** IEEE half -> number, from the definition (float64 arithmetic). */
function halfRef(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * Math.pow(2, -24);
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

let tmp = "";
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

describe("50 safetensors", () => {
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-st-"));
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  // ---- golden fixtures ------------------------------------------------------------------------------------------

  describeFixtures("golden fixtures (from manifest.json)", (manifest) => {
    it("the manifest lists at least one fixture", () => {
      assert.ok(manifest.fixtures.length > 0, "manifest.json has an empty `fixtures` list");
    });

    for (const entry of manifest.fixtures) {
      it(`${entry.name}: sha256, size, tensors (dtype, shape, bytes, max_abs) and metadata`, () => {
        const file = fixturePath(entry);
        const buf = fs.readFileSync(file);
        assert.equal(buf.length, entry.bytes, `${entry.file}: size`);
        assert.equal(createHash("sha256").update(buf).digest("hex"), entry.sha256, `${entry.file}: sha256`);

        // An independent reading of the header, to check the bytes the library hands out.
        const n = Number(buf.readBigUInt64LE(0));
        const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { data_offsets: [number, number] }>;
        const dataStart = 8 + n;

        const f = openSafetensors(file);
        try {
          assert.equal(f.metadata.fixture, entry.name, "__metadata__.fixture names the fixture");
          assert.deepEqual(new Set(f.keys()), new Set(entry.tensors.map((t) => t.name)), "the file holds exactly the manifest's tensors");
          for (const t of entry.tensors) {
            const info = f.info(t.name);
            assert.equal(info.dtype, t.dtype, `${t.name}: dtype`);
            assert.deepEqual([...info.shape], t.shape, `${t.name}: shape`);
            const raw = f.getRaw(t.name);
            const [b, e] = header[t.name].data_offsets;
            assert.ok(sameBytes(raw.bytes, buf.subarray(dataStart + b, dataStart + e)), `${t.name}: bytes`);
            const x = f.get(t.name);
            assert.deepEqual([...x.shape], t.shape, `${t.name}: tensor shape`);
            if (t.dtype === "F32") assert.equal(x.dtype, "float32");
            if (t.dtype === "I64") assert.equal(x.dtype, "int64");
            if (t.max_abs !== undefined) {
              let m = 0;
              for (const v of x.toFlatArray()) m = Math.max(m, Math.abs(v));
              const tol = printedTolerance(t.max_abs);
              assert.ok(Math.abs(m - t.max_abs) <= tol, `${entry.name} ${t.name}: max |value| ${m}, manifest says ${t.max_abs} (tolerance ${tol})`);
            }
          }
        } finally {
          f.close();
        }
      });
    }

    it("readSafetensorsAsync on the largest fixture matches the sync reader and leaves the event loop free", async () => {
      const largest = manifest.fixtures.reduce((a, b) => (b.bytes > a.bytes ? b : a));
      const file = fixturePath(largest);
      let ticks = 0;
      let running = true;
      const spin = () => {
        ticks++;
        if (running) setImmediate(spin);
      };
      setImmediate(spin);
      const asyncRead = await readSafetensorsAsync(file);
      running = false;
      const syncRead = readSafetensors(file);
      assert.deepEqual([...asyncRead.tensors.keys()], [...syncRead.tensors.keys()]);
      for (const [k, v] of syncRead.tensors) assert.ok(sameBytes(asyncRead.tensors.get(k)!.data, v.data), k);
      assert.deepEqual(asyncRead.metadata, syncRead.metadata);
      assert.ok(ticks >= asyncRead.tensors.size / 2, `event loop ran ${ticks} times while reading ${asyncRead.tensors.size} tensors`);
    });
  });

  // ---- byte layout --------------------------------------------------------------------------------------------

  describe("byte layout", () => {
    // Byte vectors from huggingface/safetensors safetensors/src/tensor.rs (test_serialization, test_empty,
    // test_serialization_forced_alignement).
    const f32 = bytesOf(new Float32Array([0, 1, 2, 3, 4, 5]));
    it("matches the reference library's serialisation vectors", () => {
      const ref1 = [
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34,
        115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91,
        48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
      ];
      const out1 = Buffer.concat(serializeSafetensors({ "attn.0": { dtype: "F32", shape: [1, 2, 3], bytes: f32 } }));
      assert.deepEqual([...out1], ref1);
      const ref2 = [
        72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115,
        104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58,
        91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
        160, 64,
      ];
      const out2 = Buffer.concat(serializeSafetensors(new Map([["attn0", new Tensor(new Float32Array([0, 1, 2, 3, 4, 5]), [1, 1, 2, 3])]])));
      assert.deepEqual([...out2], ref2);
      assert.deepEqual([...Buffer.concat(serializeSafetensors({}))], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
      const ref3 = [
        40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111,
        114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
      ];
      assert.deepEqual([...Buffer.concat(serializeSafetensors({}, { framework: "pt" }))], ref3);
    });

    it("orders tensors by descending dtype then UTF-8 name, pads the header with spaces and aligns every tensor", () => {
      const rnd = (n: number, s: number) => randomBytes(n, s);
      const input: Record<string, Tensor | RawTensor> = {
        b: new Tensor(new Float32Array([1, 2]), [2]),
        a: new Tensor(new Float32Array([3]), [1]),
        "10": { dtype: "U8", shape: [3], bytes: rnd(3, 1) },
        "9": { dtype: "U8", shape: [1], bytes: rnd(1, 2) },
        x: new Tensor(BigInt64Array.of(-5n), [1]),
        h: new Tensor(Uint16Array.of(1, 2, 3), [3]),
        c: { dtype: "F16", shape: [1], bytes: rnd(2, 3) },
        flag: { dtype: "BOOL", shape: [5], bytes: Uint8Array.of(0, 1, 1, 0, 1) },
        "\uff61": new Tensor(new Float32Array([4]), [1]), // UTF-8 EF BD A1
        "\u{1f600}": new Tensor(new Float32Array([5]), [1]), // UTF-8 F0 9F 98 80 (sorts first in UTF-16)
      };
      const order = ["x", "a", "b", "\uff61", "\u{1f600}", "h", "c", "10", "9", "flag"];
      const expectedJson =
        '{"__metadata__":{"a":"\u00e9","z":"1"},' +
        '"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
        '"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
        '"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},' +
        '"\uff61":{"dtype":"F32","shape":[1],"data_offsets":[20,24]},' +
        '"\u{1f600}":{"dtype":"F32","shape":[1],"data_offsets":[24,28]},' +
        '"h":{"dtype":"BF16","shape":[3],"data_offsets":[28,34]},' +
        '"c":{"dtype":"F16","shape":[1],"data_offsets":[34,36]},' +
        '"10":{"dtype":"U8","shape":[3],"data_offsets":[36,39]},' +
        '"9":{"dtype":"U8","shape":[1],"data_offsets":[39,40]},' +
        '"flag":{"dtype":"BOOL","shape":[5],"data_offsets":[40,45]}}';
      const p = path.join(tmp, "order.safetensors");
      writeSafetensors(p, input, { z: "1", a: "\u00e9" });
      const buf = fs.readFileSync(p);
      const n = Number(buf.readBigUInt64LE(0));
      const jsonBytes = Buffer.from(expectedJson, "utf8");
      assert.equal(n % 8, 0, "header length is a multiple of 8");
      assert.equal(n, Math.ceil(jsonBytes.length / 8) * 8);
      assert.equal(buf.subarray(8, 8 + jsonBytes.length).toString("utf8"), expectedJson);
      assert.ok(buf.subarray(8 + jsonBytes.length, 8 + n).every((c) => c === 0x20), "padding is spaces");
      const parts = order.map((k) => {
        const v = input[k];
        return v instanceof Tensor ? bytesOf(v.data) : v.bytes;
      });
      assert.ok(sameBytes(buf.subarray(8 + n), Buffer.concat(parts)), "data section = tensors in header order");
      const f = openSafetensors(p);
      try {
        assert.deepEqual(f.keys(), order);
        for (const k of order) {
          const info = f.info(k);
          assert.equal(info.byteOffset % ELEM[info.dtype], 0, `${k} is aligned to its element size`);
        }
      } finally {
        f.close();
      }
    });

    it("reads a file whose header is not padded (data at an odd offset) into aligned typed arrays", () => {
      const vals = new Float32Array([1.5, -2.25, 3e-39]);
      const ints = BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n);
      let json = JSON.stringify({ i: { dtype: "I64", shape: [2], data_offsets: [0, 16] }, f: { dtype: "F32", shape: [3], data_offsets: [16, 28] } });
      while ((8 + Buffer.byteLength(json)) % 8 !== 3) json += " ";
      const p = path.join(tmp, "unaligned.safetensors");
      fs.writeFileSync(p, buildFile(json, Buffer.concat([bytesOf(ints), bytesOf(vals)]), false));
      const { tensors } = readSafetensors(p);
      const handle = openSafetensors(p);
      assert.equal(handle.info("i").byteOffset % 8, 3, "the file really is misaligned");
      handle.close();
      const i = tensors.get("i")!;
      const f = tensors.get("f")!;
      assert.equal(i.data.byteOffset % 8, 0);
      assert.equal(f.data.byteOffset % 4, 0);
      assert.ok(sameBytes(i.data, ints) && sameBytes(f.data, vals));
    });
  });

  // ---- round trips --------------------------------------------------------------------------------------------

  describe("round trips", () => {
    function tensorsForRoundTrip(): Record<string, Tensor> {
      const specials = new Float32Array(new Uint32Array([0x7fc00001, 0xffbfffff, 0x7f800001, 0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x3f800000]).buffer);
      return {
        "f32.specials": new Tensor(specials, [2, 4]),
        "f32.random": new Tensor(new Float32Array(randomBytes(4 * 24, 7).buffer), [2, 3, 4]),
        "f32.scalar": Tensor.scalar(-3.25),
        "f32.empty": Tensor.zeros([0]),
        "f32.empty2": Tensor.zeros([2, 0, 3]),
        "bf16.random": new Tensor(new Uint16Array(randomBytes(2 * 10, 8).buffer), [5, 2]),
        "bf16.scalar": new Tensor(Uint16Array.of(0xffff), []),
        "bf16.empty": Tensor.zeros([0, 4], { dtype: "bfloat16" }),
        "i32.extremes": new Tensor(Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 0, -1), [4]),
        "i32.scalar": new Tensor(Int32Array.of(7), []),
        "i64.extremes": new Tensor(BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n, 3n), [2, 3]),
        "i64.scalar": new Tensor(BigInt64Array.of(-42n), []),
        "i64.empty": Tensor.zeros([3, 0], { dtype: "int64" }),
      };
    }

    function checkSame(got: Map<string, Tensor>, want: Record<string, Tensor>): void {
      assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
      for (const [k, w] of Object.entries(want)) {
        const g = got.get(k)!;
        assert.equal(g.dtype, w.dtype, `${k}: dtype`);
        assert.deepEqual([...g.shape], [...w.shape], `${k}: shape`);
        assert.ok(sameBytes(g.data, w.data), `${k}: bits`);
      }
    }

    it("float32 (NaN payloads, -0, inf, subnormals), bfloat16, int32, int64, 0-d and empty tensors, sync", () => {
      const want = tensorsForRoundTrip();
      const p = path.join(tmp, "rt.safetensors");
      writeSafetensors(p, want, { note: "round trip", "\u00fcnicode": "\u2713 \u{1f600}" });
      const { tensors, metadata } = readSafetensors(p);
      checkSame(tensors, want);
      assert.deepEqual({ ...metadata }, { note: "round trip", "\u00fcnicode": "\u2713 \u{1f600}" });
      // Writing what was read gives the same file, byte for byte.
      assert.ok(sameBytes(Buffer.concat(serializeSafetensors(tensors, metadata)), fs.readFileSync(p)));
    });

    it("the same through the async writer and reader", async () => {
      const want = tensorsForRoundTrip();
      const p = path.join(tmp, "rt-async.safetensors");
      await writeSafetensorsAsync(p, new Map(Object.entries(want)));
      const { tensors, metadata } = await readSafetensorsAsync(p);
      checkSame(tensors, want);
      assert.deepEqual({ ...metadata }, {});
      writeSafetensors(path.join(tmp, "rt-sync.safetensors"), want);
      assert.ok(sameBytes(fs.readFileSync(p), fs.readFileSync(path.join(tmp, "rt-sync.safetensors"))), "sync and async writers agree");
    });

    it("every safetensors dtype round-trips bit-exactly as raw bytes (getRaw / getRawAsync)", async () => {
      const shapes = [[2, 3], [], [0], [4, 0, 2]];
      const want = new Map<string, RawTensor>();
      SAFETENSORS_DTYPES.forEach((dtype, i) =>
        shapes.forEach((shape, j) => {
          const n = shape.reduce((a, b) => a * b, 1);
          want.set(`${dtype}.${j}`, { dtype, shape, bytes: randomBytes(n * ELEM[dtype], 100 + 10 * i + j) });
        }),
      );
      const p = path.join(tmp, "raw.safetensors");
      writeSafetensors(p, want);
      const f = await openSafetensorsAsync(p);
      try {
        assert.equal(f.size, want.size);
        for (const [k, w] of want) {
          for (const g of [f.getRaw(k), await f.getRawAsync(k)]) {
            assert.equal(g.dtype, w.dtype, k);
            assert.deepEqual([...g.shape], w.shape, k);
            assert.ok(sameBytes(g.bytes, w.bytes), `${k}: bytes`);
          }
        }
      } finally {
        f.close();
      }
    });

    it("F16 widens to float32 exactly for all 65536 bit patterns (subnormals, ±0, ±inf, NaN)", () => {
      const all = new Uint16Array(65536).map((_, i) => i);
      const p = path.join(tmp, "f16.safetensors");
      writeSafetensors(p, { h: { dtype: "F16", shape: [256, 256], bytes: bytesOf(all) } });
      const f = openSafetensors(p);
      try {
        const t = f.get("h");
        assert.equal(t.dtype, "float32");
        assert.deepEqual([...t.shape], [256, 256]);
        const out = t.f32();
        const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
        for (let h = 0; h < 65536; ++h) {
          const ref = halfRef(h);
          if (Number.isNaN(ref)) {
            assert.ok(Number.isNaN(out[h]), `0x${h.toString(16)}: NaN`);
            assert.equal(bits[h] >>> 31, h >>> 15, `0x${h.toString(16)}: NaN sign`);
          } else assert.ok(Object.is(out[h], ref), `0x${h.toString(16)}: got ${out[h]}, expected ${ref}`);
        }
        assert.ok(sameBytes(f.getRaw("h").bytes, all), "raw bits via getRaw");
      } finally {
        f.close();
      }
    });

    it("U8, BOOL, I8, I16, U16 read as int32 and U32 as int64 with exact values; F64/U64/F8 need getRaw", async () => {
      const b = randomBytes(8 * 6, 99);
      const dv = new DataView(b.buffer);
      const p = path.join(tmp, "ints.safetensors");
      const raws: Record<string, RawTensor> = {};
      for (const d of ["U8", "BOOL", "I8", "I16", "U16", "U32", "F64", "U64", "F8_E4M3", "F8_E5M2"] as SafetensorsDType[])
        raws[d] = { dtype: d, shape: [2, 3], bytes: b.subarray(0, 6 * ELEM[d]) };
      writeSafetensors(p, raws);
      const f = openSafetensors(p);
      try {
        const expect: Record<string, (i: number) => number | bigint> = {
          U8: (i) => dv.getUint8(i),
          BOOL: (i) => (dv.getUint8(i) !== 0 ? 1 : 0),
          I8: (i) => dv.getInt8(i),
          I16: (i) => dv.getInt16(2 * i, true),
          U16: (i) => dv.getUint16(2 * i, true),
          U32: (i) => BigInt(dv.getUint32(4 * i, true)),
        };
        for (const [d, fn] of Object.entries(expect)) {
          for (const t of [f.get(d), await f.getAsync(d)]) {
            assert.equal(t.dtype, d === "U32" ? "int64" : "int32", d);
            assert.deepEqual([...t.shape], [2, 3]);
            assert.deepEqual([...(t.data as Int32Array | BigInt64Array)], Array.from({ length: 6 }, (_, i) => fn(i)), d);
          }
        }
        for (const d of ["F64", "U64", "F8_E4M3", "F8_E5M2"]) {
          assert.throws(() => f.get(d), (e: Error) => e instanceof TypeError && e.message.includes(`"${d}"`) && /getRaw/.test(e.message));
          await assert.rejects(f.getAsync(d), TypeError);
          assert.ok(sameBytes(f.getRaw(d).bytes, raws[d].bytes));
        }
      } finally {
        f.close();
      }
      assert.throws(() => readSafetensors(p), (e: Error) => e instanceof TypeError && /getRaw/.test(e.message));
    });

    it("rejects bad tensors, names and metadata with TypeError/RangeError naming them, writing nothing", () => {
      const p = path.join(tmp, "bad-args.safetensors");
      const ok = new Tensor(new Float32Array(2), [2]);
      const cases: [() => void, new (...a: never[]) => Error, RegExp][] = [
        [() => writeSafetensors(p, { "": ok }), RangeError, /tensor name is empty/],
        [() => writeSafetensors(p, { __metadata__: ok }), RangeError, /"__metadata__" is reserved/],
        [() => writeSafetensors(p, { "bad\ud800": ok }), RangeError, /tensor name "bad\\ud800" has a lone UTF-16 surrogate/],
        [() => writeSafetensors(p, new Map([[5 as unknown as string, ok]])), TypeError, /tensor name must be a string, got number 5/],
        [() => writeSafetensors(p, { w: 5 as unknown as Tensor }), TypeError, /tensor "w" is number 5, expected a Tensor/],
        [() => writeSafetensors(p, { w: { dtype: "F32", shape: [2], bytes: new Uint8Array(7) } }), RangeError, /tensor "w": bytes has 7 bytes, expected F32 x shape \[2\] = 8/],
        [() => writeSafetensors(p, { w: { dtype: "F128" as SafetensorsDType, shape: [2], bytes: new Uint8Array(8) } }), RangeError, /tensor "w": unknown dtype "F128"/],
        [() => writeSafetensors(p, { w: { dtype: "F32", shape: [-2], bytes: new Uint8Array(8) } }), RangeError, /tensor "w": shape\[0\] is -2/],
        [() => writeSafetensors(p, { w: { dtype: "F32", shape: [2], bytes: new Float32Array(2) as unknown as Uint8Array } }), TypeError, /tensor "w": bytes is an object, expected a Uint8Array/],
        [() => writeSafetensors(p, { w: ok }, { step: 5 as unknown as string }), TypeError, /metadata\["step"\] is number 5, expected a string/],
        [() => writeSafetensors(p, { w: ok }, { s: "\udc00" }), RangeError, /metadata\["s"\] has a lone UTF-16 surrogate/],
        [() => writeSafetensors(p, { w: ok }, "x" as unknown as Record<string, string>), TypeError, /metadata must be a Map or an object/],
        [() => writeSafetensors(p, null as unknown as Record<string, Tensor>), TypeError, /tensors must be a Map or an object/],
        [() => writeSafetensors(5 as unknown as string, { w: ok }), TypeError, /writeSafetensors: path must be a string/],
      ];
      for (const [fn, cls, re] of cases)
        assert.throws(fn, (e: Error) => e instanceof cls && re.test(e.message) && /^writeSafetensors: /.test(e.message), `${re}`);
      assert.equal(fs.existsSync(p), false);
      assert.deepEqual(tmpFiles(tmp), []);
    });
  });

  // ---- atomic writes ------------------------------------------------------------------------------------------

  describe("atomic writes", () => {
    let dir = "";
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(tmp, "atomic-"));
    });

    it("writes, replaces, keeps an existing file's mode and a symlink", async () => {
      const p = path.join(dir, "a.bin");
      writeFileAtomic(p, [Uint8Array.of(1, 2), Uint8Array.of(3)]);
      assert.deepEqual([...fs.readFileSync(p)], [1, 2, 3]);
      fs.chmodSync(p, 0o640);
      await writeFileAtomicAsync(p, (async function* () {
        yield Uint8Array.of(4);
        yield Uint8Array.of(5, 6);
      })());
      assert.deepEqual([...fs.readFileSync(p)], [4, 5, 6]);
      assert.equal(fs.statSync(p).mode & 0o777, 0o640);
      const link = path.join(dir, "link.bin");
      fs.symlinkSync(p, link);
      writeFileAtomic(link, Uint8Array.of(7));
      assert.ok(fs.lstatSync(link).isSymbolicLink(), "the link is still a link");
      assert.deepEqual([...fs.readFileSync(p)], [7]);
      assert.deepEqual(tmpFiles(dir), []);
    });

    it("a failure mid-write (a chunk source that throws) leaves the old file intact and no temp file", async () => {
      const p = path.join(dir, "old.safetensors");
      writeSafetensors(p, { w: Tensor.ones([4]) });
      const old = fs.readFileSync(p);
      let sawTemp = 0;
      const failing = function* (): Generator<Uint8Array> {
        yield new Uint8Array(4096).fill(1);
        sawTemp = tmpFiles(dir).length; // the temp file exists and is being written
        throw new Error("serialisation failed");
      };
      assert.throws(() => writeFileAtomic(p, failing()), /serialisation failed/);
      assert.equal(sawTemp, 1);
      assert.ok(sameBytes(fs.readFileSync(p), old), "old file intact (sync)");
      assert.deepEqual(tmpFiles(dir), []);
      sawTemp = 0;
      await assert.rejects(writeFileAtomicAsync(p, failing()), /serialisation failed/);
      assert.equal(sawTemp, 1);
      assert.ok(sameBytes(fs.readFileSync(p), old), "old file intact (async)");
      assert.throws(() => writeFileAtomic(p, [Uint8Array.of(1), "x" as unknown as Uint8Array]), (e: Error) => e instanceof TypeError && /chunk 1 is string/.test(e.message));
      assert.ok(sameBytes(fs.readFileSync(p), old));
      assert.deepEqual(tmpFiles(dir), []);
    });

    it("a failing rename (target is a directory) removes the temp file", async () => {
      const target = path.join(dir, "is-a-dir");
      fs.mkdirSync(target);
      fs.writeFileSync(path.join(target, "keep"), "x");
      assert.throws(() => writeSafetensors(target, { w: Tensor.ones([2]) }), (e: NodeJS.ErrnoException) => typeof e.code === "string");
      await assert.rejects(writeSafetensorsAsync(target, { w: Tensor.ones([2]) }), (e: NodeJS.ErrnoException) => typeof e.code === "string");
      assert.deepEqual(fs.readdirSync(target), ["keep"]);
      assert.deepEqual(tmpFiles(dir), []);
    });

    (isRoot ? it.skip : it)(
      `a read-only target directory fails cleanly and leaves the old file${isRoot ? " (skipped: running as root, which ignores directory permissions; the EFBIG test covers a mid-write failure)" : ""}`,
      () => {
        const p = path.join(dir, "ro.safetensors");
        writeSafetensors(p, { w: Tensor.ones([4]) });
        const old = fs.readFileSync(p);
        fs.chmodSync(dir, 0o555);
        try {
          assert.throws(() => writeSafetensors(p, { w: Tensor.zeros([4]) }), (e: NodeJS.ErrnoException) => e.code === "EACCES" || e.code === "EPERM");
        } finally {
          fs.chmodSync(dir, 0o755);
        }
        assert.ok(sameBytes(fs.readFileSync(p), old));
        assert.deepEqual(tmpFiles(dir), []);
      },
    );

    const canUlimit = process.platform !== "win32" && spawnSync("bash", ["-c", "ulimit -f 64"]).status === 0;
    (canUlimit ? it : it.skip)(
      `a write that fails half way on the disk (EFBIG under ulimit -f) leaves the old file and no temp file${canUlimit ? "" : " (skipped: needs bash and ulimit)"}`,
      function () {
        this.timeout(30000);
        const p = path.join(dir, "big.safetensors");
        writeSafetensors(p, { w: Tensor.ones([4]) });
        const old = fs.readFileSync(p);
        // A child limited to 64 KiB files writes 1 MiB: the kernel fails the write after 64 KiB.
        const script = path.join(tmp, "efbig-child.js");
        fs.writeFileSync(
          script,
          `const { writeSafetensors } = require(${JSON.stringify(path.join(repoRoot, "lib", "io"))});\n` +
            `const { Tensor } = require(${JSON.stringify(path.join(repoRoot, "lib", "tensor"))});\n` +
            "try { writeSafetensors(process.env.TARGET, { w: new Tensor(new Float32Array(1 << 18), [1 << 18]) }); console.log('WROTE'); }\n" +
            "catch (e) { console.log('ERROR ' + e.code); }\n",
        );
        const r = spawnSync("bash", ["-c", 'ulimit -f 64; exec "$0" --import tsx "$1"', process.execPath, script], {
          cwd: repoRoot,
          env: { ...process.env, TARGET: p },
          encoding: "utf8",
        });
        assert.equal(r.stdout.trim(), "ERROR EFBIG", `child: ${r.stdout} ${r.stderr}`);
        assert.ok(sameBytes(fs.readFileSync(p), old), "old file intact");
        assert.deepEqual(tmpFiles(dir), []);
      },
    );
  });

  // ---- corrupt files ------------------------------------------------------------------------------------------

  describe("corrupt files", () => {
    // The valid base: "a" F32 [2, 3] at [0, 24], "b" I64 [2] at [24, 40].
    const data = randomBytes(40, 5);
    const a = { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] };
    const b = { dtype: "I64", shape: [2], data_offsets: [24, 40] };
    const prefixOnly = (n: bigint, extra = 0) => {
      const buf = Buffer.alloc(8 + extra);
      buf.writeBigUInt64LE(n);
      return buf;
    };
    const badUtf8Header = Buffer.concat([Buffer.from('{"a\u00e9'), Buffer.from([0xff]), Buffer.from('":{}}')]);
    const overlong = Buffer.concat([Buffer.from('{"'), Buffer.from([0xc0, 0xaf]), Buffer.from('":{}}')]);

    interface Case {
      title: string;
      file: () => Buffer;
      problem: RegExp;
      tensor?: string;
      offset?: number;
    }
    const cases: Case[] = [
      { title: "empty file", file: () => Buffer.alloc(0), problem: /file has 0 bytes, shorter than the 8-byte header length/ },
      { title: "file shorter than 8 bytes", file: () => Buffer.from([1, 2, 3]), problem: /file has 3 bytes/ },
      { title: "header length past the end of the file", file: () => prefixOnly(1000n, 10), problem: /header length 1000 runs past the end of the file \(18 bytes/, offset: 0 },
      { title: "header length above the 100 MB limit", file: () => prefixOnly(100_000_008n, 16), problem: /header length 100000008 exceeds the 100000000-byte limit/, offset: 0 },
      { title: "header length 2^64 - 1", file: () => prefixOnly(2n ** 64n - 1n, 16), problem: /header length 18446744073709551615 exceeds/ },
      { title: "header length 0", file: () => prefixOnly(0n), problem: /header is not valid JSON/, offset: 8 },
      { title: "header not UTF-8", file: () => buildFile(badUtf8Header), problem: /header is not valid UTF-8 \(byte 0xff\)/, offset: 8 + 5 },
      { title: "overlong UTF-8 in the header", file: () => buildFile(overlong), problem: /header is not valid UTF-8 \(byte 0xc0\)/, offset: 8 + 2 },
      { title: "truncated JSON", file: () => buildFile('{"a": {"dtype": "F32"'), problem: /header is not valid JSON/ },
      { title: "unterminated deep nesting", file: () => buildFile("[".repeat(1_000_000)), problem: /header is not valid JSON/ },
      { title: "header is an array", file: () => buildFile("[1, 2]"), problem: /header is an array, expected a JSON object/ },
      { title: "header is null", file: () => buildFile("null"), problem: /header is null, expected a JSON object/ },
      { title: "header is a string", file: () => buildFile('"x"'), problem: /header is the string "x", expected a JSON object/ },
      { title: "entry not an object", file: () => buildFile({ a: [1], b }, data), problem: /entry is an array, expected \{dtype, shape, data_offsets\}/, tensor: "a" },
      { title: "deeply nested entry", file: () => buildFile(`{"a":${"[".repeat(200_000)}${"]".repeat(200_000)}}`), problem: /entry is an array/, tensor: "a" },
      { title: "missing dtype", file: () => buildFile({ a: { shape: [2, 3], data_offsets: [0, 24] }, b }, data), problem: /missing "dtype"/, tensor: "a" },
      { title: "missing shape", file: () => buildFile({ a: { dtype: "F32", data_offsets: [0, 24] }, b }, data), problem: /missing "shape"/, tensor: "a" },
      { title: "missing data_offsets", file: () => buildFile({ a, b: { dtype: "I64", shape: [2] } }, data), problem: /missing "data_offsets"/, tensor: "b" },
      { title: "dtype not a string", file: () => buildFile({ a: { ...a, dtype: 32 }, b }, data), problem: /dtype is number 32, expected a string/, tensor: "a" },
      { title: "unknown dtype", file: () => buildFile({ a: { ...a, dtype: "F128" }, b }, data), problem: /unknown dtype "F128" \(known: BOOL, U8/, tensor: "a" },
      { title: "shape not an array", file: () => buildFile({ a: { ...a, shape: "2,3" }, b }, data), problem: /shape is the string "2,3", expected an array/, tensor: "a" },
      { title: "shape element not a number", file: () => buildFile({ a: { ...a, shape: [2, "3"] }, b }, data), problem: /shape\[1\] is the string "3", expected a non-negative integer/, tensor: "a" },
      { title: "negative shape", file: () => buildFile({ a: { ...a, shape: [-2, -3] }, b }, data), problem: /shape\[0\] is number -2, expected a non-negative integer/, tensor: "a" },
      { title: "non-integer shape", file: () => buildFile({ a: { ...a, shape: [2.5, 3] }, b }, data), problem: /shape\[0\] is number 2.5/, tensor: "a" },
      { title: "shape overflowing 2^53 elements", file: () => buildFile({ a: { ...a, shape: [2 ** 31, 2 ** 31, 2 ** 31] }, b }, data), problem: /needs more than 2\^53/, tensor: "a" },
      { title: "data_offsets of length 1", file: () => buildFile({ a: { ...a, data_offsets: [0] }, b }, data), problem: /data_offsets is an array of length 1, expected \[begin, end\]/, tensor: "a" },
      { title: "data_offsets with a string", file: () => buildFile({ a: { ...a, data_offsets: [0, "24"] }, b }, data), problem: /data_offsets\[1\] is the string "24"/, tensor: "a" },
      { title: "negative data_offsets", file: () => buildFile({ a: { ...a, data_offsets: [-1, 24] }, b }, data), problem: /data_offsets\[0\] is number -1/, tensor: "a" },
      { title: "data_offsets past the data section", file: () => buildFile({ a, b: { ...b, data_offsets: [24, 48] } }, data), problem: /data_offsets \[24, 48\] run past the end of the data section \(40 bytes/, tensor: "b" },
      { title: "data_offsets with begin > end", file: () => buildFile({ a, b: { ...b, data_offsets: [40, 24] } }, data), problem: /data_offsets \[40, 24\] has begin > end/, tensor: "b" },
      {
        title: "overlapping tensors",
        file: () => buildFile({ a, b: { dtype: "F32", shape: [4], data_offsets: [16, 32] } }, data.subarray(0, 32)),
        problem: /data_offsets \[16, 32\] overlap tensor "a" \[0, 24\]/,
        tensor: "b",
      },
      { title: "a gap between tensors", file: () => buildFile({ a, b: { dtype: "I64", shape: [1], data_offsets: [32, 40] } }, data), problem: /leave a gap of 8 bytes after tensor "a"/, tensor: "b" },
      { title: "a gap before the first tensor", file: () => buildFile({ a: { ...a, data_offsets: [8, 32] } }, data.subarray(0, 32)), problem: /gap of 8 bytes after the start of the data section/, tensor: "a" },
      { title: "trailing bytes after the last tensor", file: () => buildFile({ a, b }, Buffer.concat([data, Buffer.alloc(4)])), problem: /4 trailing bytes after the last tensor "b"/ },
      {
        title: "byte size != numel x element size",
        file: () => buildFile({ a: { ...a, data_offsets: [0, 20] }, b: { ...b, data_offsets: [20, 36] } }, data.subarray(0, 36)),
        problem: /data_offsets \[0, 20\] hold 20 bytes, but dtype F32 x shape \[2, 3\] needs 24/,
        tensor: "a",
      },
      { title: "__metadata__ value not a string", file: () => buildFile({ __metadata__: { step: 5 }, a, b }, data), problem: /__metadata__\["step"\] is number 5, expected a string/ },
      { title: "__metadata__ not an object", file: () => buildFile({ __metadata__: "x", a, b }, data), problem: /__metadata__ is the string "x", expected an object of strings/ },
    ];

    it("the uncorrupted base file is valid", () => {
      const p = path.join(tmp, "base.safetensors");
      fs.writeFileSync(p, buildFile({ __metadata__: { k: "v" }, a, b }, data));
      const { tensors, metadata } = readSafetensors(p);
      assert.deepEqual({ ...metadata }, { k: "v" });
      assert.ok(sameBytes(tensors.get("a")!.data, data.subarray(0, 24)) && sameBytes(tensors.get("b")!.data, data.subarray(24)));
    });

    for (const c of cases) {
      it(`${c.title}: CorruptFileError naming the file${c.tensor ? ", the tensor" : ""} and the problem`, async () => {
        const p = path.join(tmp, `corrupt-${c.title.replace(/[^a-z0-9]+/gi, "_")}.safetensors`);
        fs.writeFileSync(p, c.file());
        const check = (e: unknown): boolean => {
          assert.ok(e instanceof CorruptFileError, `expected CorruptFileError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
          assert.equal(e.file, p);
          assert.ok(e.message.startsWith(`${p}: `), `message names the file: ${e.message}`);
          assert.match(e.message, c.problem);
          if (c.tensor) assert.ok(e.message.includes(`tensor "${c.tensor}"`), `message names tensor "${c.tensor}": ${e.message}`);
          if (c.offset !== undefined) assert.equal(e.byteOffset, c.offset, `byte offset in: ${e.message}`);
          return true;
        };
        assert.throws(() => openSafetensors(p), check);
        assert.throws(() => readSafetensors(p), check);
        await assert.rejects(openSafetensorsAsync(p), check);
      });
    }

    const hasProcFd = fs.existsSync("/proc/self/fd");
    (hasProcFd ? it : it.skip)(`failed opens, reads and closes leak no file descriptor${hasProcFd ? "" : " (skipped: needs /proc/self/fd)"}`, async () => {
      // The descriptors open on this test's files. Counting all of the process's descriptors is flaky: other
      // parts of the process (child-process pipes of earlier tests, libuv) open and close their own meanwhile.
      const root = fs.realpathSync(tmp);
      const fds = () =>
        fs.readdirSync("/proc/self/fd").filter((fd) => {
          try {
            return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(root);
          } catch {
            return false; // closed between the listing and the readlink
          }
        });
      const files = cases.map((c, i) => {
        const p = path.join(tmp, `leak-${i}.safetensors`);
        fs.writeFileSync(p, c.file());
        return p;
      });
      const good = path.join(tmp, "leak-good.safetensors");
      writeSafetensors(good, { w: Tensor.ones([3]), d: { dtype: "F64", shape: [1], bytes: new Uint8Array(8) } });
      // A handle another test left to the garbage collector may close meanwhile: what counts is what opens and stays.
      const before = new Set(fds());
      const opened = () => fds().filter((fd) => !before.has(fd));
      // The check itself sees a descriptor left open on one of the files.
      const probe = fs.openSync(good, "r");
      assert.equal(opened().length, 1, "an open descriptor on a test file is seen");
      fs.closeSync(probe);
      for (const p of files) {
        assert.throws(() => openSafetensors(p), CorruptFileError);
        await assert.rejects(openSafetensorsAsync(p), CorruptFileError);
      }
      assert.throws(() => readSafetensors(good), TypeError); // fails on the F64 tensor, after opening
      await assert.rejects(readSafetensorsAsync(good), TypeError);
      const f = await openSafetensorsAsync(good);
      const pending = f.getRawAsync("w");
      f.close();
      await pending;
      assert.deepEqual(opened(), [], "descriptors left open on the test's files");
    });

    it("a file truncated after opening fails the read with CorruptFileError", () => {
      const p = path.join(tmp, "shrinks.safetensors");
      fs.writeFileSync(p, buildFile({ a, b }, data));
      const f = openSafetensors(p);
      try {
        fs.truncateSync(p, fs.statSync(p).size - 8);
        assert.ok(f.get("a"));
        assert.throws(() => f.get("b"), (e: Error) => e instanceof CorruptFileError && /tensor "b": file ends at byte/.test(e.message));
      } finally {
        f.close();
      }
    });

    it("a directory or a FIFO is refused without blocking; a missing file gives ENOENT", () => {
      assert.throws(() => openSafetensors(tmp), (e: Error) => /is not a regular file/.test(e.message) || (e as NodeJS.ErrnoException).code === "EISDIR");
      const fifo = path.join(tmp, "fifo");
      if (process.platform !== "win32" && spawnSync("mkfifo", [fifo]).status === 0)
        assert.throws(() => openSafetensors(fifo), /is not a regular file/);
      assert.throws(() => openSafetensors(path.join(tmp, "missing.safetensors")), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
      assert.throws(() => openSafetensors(42 as unknown as string), TypeError);
    });
  });

  // ---- lifecycle, memory ----------------------------------------------------------------------------------------

  describe("open files", () => {
    let small = "";
    before(() => {
      small = path.join(tmp, "life.safetensors");
      writeSafetensors(small, { w: new Tensor(new Float32Array([1, 2, 3, 4]), [2, 2]), i: new Tensor(BigInt64Array.of(9n), []) }, { m: "1" });
    });

    it("close() is idempotent; use after close throws a clear error; info() still works; Symbol.dispose closes", async () => {
      const f = openSafetensors(small);
      assert.deepEqual(f.keys(), ["i", "w"]);
      assert.equal(f.metadata.m, "1");
      assert.deepEqual([...f.get("w").toFlatArray()], [1, 2, 3, 4]);
      f.close();
      f.close();
      assert.equal(f.closed, true);
      const closedErr = (e: Error) => /closed/.test(e.message) && e.message.includes(small);
      assert.throws(() => f.get("w"), closedErr);
      assert.throws(() => f.getRaw("w"), closedErr);
      await assert.rejects(f.getAsync("w"), closedErr);
      assert.deepEqual([...f.info("w").shape], [2, 2]);
      const g = openSafetensors(small);
      g[Symbol.dispose]();
      assert.equal(g.closed, true);
      assert.throws(() => g.get("i"), closedErr);
    });

    it("an unknown tensor name is a RangeError naming it and the file", () => {
      const f = openSafetensors(small);
      try {
        assert.throws(() => f.get("nope"), (e: Error) => e instanceof RangeError && e.message.includes('"nope"') && e.message.includes(small));
        assert.throws(() => f.info("nope"), RangeError);
      } finally {
        f.close();
      }
    });

    it("close() during a pending async read lets the read finish", async () => {
      const f = await openSafetensorsAsync(small);
      const pending = f.getAsync("w");
      f.close();
      assert.deepEqual([...(await pending).toFlatArray()], [1, 2, 3, 4]);
      assert.throws(() => f.get("w"), /closed/);
    });

    it("reading one small tensor of a 64 MiB file does not grow heap or RSS by the file size", function () {
      this.timeout(30000);
      const gc = (globalThis as { gc?: () => void }).gc;
      const big = path.join(tmp, "big64.safetensors");
      const n = 16 * 1024 * 1024;
      {
        const data = new Float32Array(n);
        data[0] = 1;
        data[n - 1] = 2;
        writeSafetensors(big, { big: new Tensor(data, [n]), small: new Tensor(new Float32Array([7, 8, 9]), [3]) });
      }
      assert.equal(fs.statSync(big).size >= 64 * 1024 * 1024, true);
      gc?.();
      const before = process.memoryUsage();
      const f = openSafetensors(big);
      const s = f.get("small");
      const afterMem = process.memoryUsage();
      assert.deepEqual([...s.toFlatArray()], [7, 8, 9]);
      const heapGrowth = afterMem.heapUsed + afterMem.arrayBuffers - (before.heapUsed + before.arrayBuffers);
      const rssGrowth = afterMem.rss - before.rss;
      assert.ok(heapGrowth < 4 * 1024 * 1024, `heap + array buffers grew by ${heapGrowth} bytes`);
      assert.ok(rssGrowth < 32 * 1024 * 1024, `RSS grew by ${rssGrowth} bytes`);
      const t = f.get("big").f32();
      assert.equal(t.length, n);
      assert.equal(t[0], 1);
      assert.equal(t[n - 1], 2);
      f.close();
      fs.rmSync(big);
    });
  });
});
