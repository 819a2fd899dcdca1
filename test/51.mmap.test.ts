// Layer 5 (I/O): memory-mapped safetensors (native mmapFile in csrc/binding/mmap.cc; lib/io/safetensors.ts with
// { mmap: true }; lib/io/sharded.ts maps shards by default). Mapped reads give the same tensors as reads (every
// dtype, aligned views and misaligned copies), writes into a view never reach the file, mappings are unmapped when
// collected, bad paths give errors naming the file; and loading a ~200 MB bf16 checkpoint lazily does not copy it
// into anonymous (heap) memory, measured in a child process from /proc/self/status against the read path.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Tensor } from "../lib";
import { native } from "../lib/native";
import { mmapAvailable, openSafetensors, readSafetensors, writeSafetensors } from "../lib/io/safetensors";
import { openShardedCheckpoint, writeShardedCheckpoint } from "../lib/io/sharded";
import { FUZZ_SEED, fuzzCases, Rand } from "./support/fuzz";

const root = path.resolve(__dirname, "..");
const linux = process.platform === "linux";

function vmSize(): number {
  return Number(/^VmSize:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
}

async function collect(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; ++i) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
}

/** A safetensors file whose header length is not a multiple of 8, so every tensor after it is misaligned. */
function misalignedFile(file: string, f32: Float32Array, bf: Uint16Array): void {
  const header = JSON.stringify({ a: { dtype: "F32", shape: [f32.length], data_offsets: [0, f32.byteLength] }, b: { dtype: "BF16", shape: [bf.length], data_offsets: [f32.byteLength, f32.byteLength + bf.byteLength] } }) + " ";
  const h = Buffer.from(header.length % 2 === 0 ? header + " " : header); // odd length: 8 + N is odd
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, Buffer.from(f32.buffer), Buffer.from(bf.buffer)]));
}

describe("51 memory-mapped checkpoints", function () {
  this.timeout(60000);
  let dir = "";
  before(function () {
    if (!mmapAvailable()) this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-mmap-"));
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it("mmapFile: the file's bytes; writes stay private; empty files; errors name the file", () => {
    const file = path.join(dir, "bytes.bin");
    const bytes = Uint8Array.from({ length: 10000 }, (_, i) => (i * 7) & 255);
    fs.writeFileSync(file, bytes);
    const buf = native.mmapFile(file);
    assert.ok(buf instanceof ArrayBuffer);
    assert.deepEqual(new Uint8Array(buf), bytes);
    new Uint8Array(buf)[0] = 99; // private copy-on-write: allowed, and the file keeps its byte
    assert.equal(new Uint8Array(buf)[0], 99);
    assert.equal(fs.readFileSync(file)[0], 0);
    fs.writeFileSync(path.join(dir, "empty.bin"), "");
    assert.equal(native.mmapFile(path.join(dir, "empty.bin")).byteLength, 0);

    const missing = path.join(dir, "missing.bin");
    assert.throws(() => native.mmapFile(missing), (e: NodeJS.ErrnoException) => e.constructor === Error && e.message === `mmapFile: cannot open ${missing}: No such file or directory` && e.code === "ENOENT");
    assert.throws(() => native.mmapFile(dir), (e: Error) => e.message === `mmapFile: ${dir} is not a regular file`);
    const fifo = path.join(dir, "fifo");
    if (spawnSync("mkfifo", [fifo]).status === 0) assert.throws(() => native.mmapFile(fifo), (e: Error) => e.message === `mmapFile: ${fifo} is not a regular file`, "a FIFO neither blocks nor maps");
    if (process.getuid?.() !== 0) {
      const locked = path.join(dir, "locked.bin");
      fs.writeFileSync(locked, "x");
      fs.chmodSync(locked, 0);
      assert.throws(() => native.mmapFile(locked), (e: NodeJS.ErrnoException) => e.code === "EACCES" && e.message.includes(locked));
    }
    assert.throws(() => native.mmapFile(3 as never), (e: Error) => e instanceof TypeError && /^mmapFile: path must be a string, got number/.test(e.message));
    assert.throws(() => native.mmapFile(""), (e: Error) => e instanceof RangeError && /^mmapFile: path is empty/.test(e.message));
    assert.throws(() => native.mmapFile("a\0b"), (e: Error) => e instanceof RangeError && /NUL/.test(e.message));
  });

  it("mappings are unmapped when garbage-collected (address space stays flat over 3 GB of mappings)", async function () {
    if (!linux || !(globalThis as { gc?: unknown }).gc) this.skip();
    const file = path.join(dir, "32m.bin");
    fs.writeFileSync(file, Buffer.alloc(32 << 20, 1));
    await collect();
    const before = vmSize();
    for (let i = 0; i < 100; ++i) {
      const b = native.mmapFile(file);
      assert.equal(b.byteLength, 32 << 20);
      if (i % 10 === 9) await collect();
    }
    await collect();
    const grew = vmSize() - before;
    assert.ok(grew < 1 << 30, `VmSize grew by ${(grew / 2 ** 20).toFixed(0)} MiB after mapping 32 MiB 100 times`);
  });

  it("openSafetensors { mmap }: the same tensors as reads for every dtype; aligned ones view the mapping, misaligned ones are copied", () => {
    const file = path.join(dir, "all.safetensors");
    const f32 = Float32Array.from({ length: 37 }, (_, i) => Math.sin(i) * 1e3);
    const tensors = new Map<string, Tensor | { dtype: string; shape: number[]; bytes: Uint8Array }>([
      ["f32", new Tensor(f32, [37])],
      ["bf16", new Tensor(Uint16Array.from({ length: 21 }, (_, i) => 0x3f80 + i), [3, 7])],
      ["i32", new Tensor(Int32Array.from({ length: 5 }, (_, i) => -i * 1000), [5])],
      ["i64", new Tensor(BigInt64Array.from({ length: 3 }, (_, i) => BigInt(i) * 10n ** 12n), [3])],
      ["f16", { dtype: "F16", shape: [4], bytes: new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x0001]).buffer) }],
      ["u8", { dtype: "U8", shape: [3], bytes: Uint8Array.of(1, 200, 255) }],
      ["bool", { dtype: "BOOL", shape: [2], bytes: Uint8Array.of(0, 7) }],
      ["empty", new Tensor(new Float32Array(0), [0, 4])],
    ]);
    writeSafetensors(file, tensors as never, { note: "x" });
    const plain = readSafetensors(file).tensors;
    const f = openSafetensors(file, { mmap: true });
    const size = fs.statSync(file).size;
    for (const [k, t] of plain) {
      const m = f.get(k);
      assert.equal(m.dtype, t.dtype, k);
      assert.deepEqual(m.shape, t.shape, k);
      assert.deepEqual(Array.from(m.data as ArrayLike<number | bigint>), Array.from(t.data as ArrayLike<number | bigint>), k);
      assert.deepEqual(f.getRaw(k).bytes, openSafetensors(file).getRaw(k).bytes, `${k} raw`);
    }
    assert.ok(f.mapped);
    for (const k of ["f32", "bf16", "i32", "i64"]) assert.equal(f.get(k).data.buffer.byteLength, size, `${k} views the mapped file`);
    assert.equal(f.get("f16").data.buffer.byteLength, 16, "converted dtypes are fresh arrays");
    // writing into a view changes neither the file nor later reads of it from disk
    const view = f.get("f32");
    view.f32()[0] = 12345;
    assert.equal(readSafetensors(file).tensors.get("f32")!.f32()[0], f32[0]);
    // tensors outlive close(); get() after close is refused as before
    f.close();
    assert.equal(view.f32()[1], f32[1]);
    assert.throws(() => f.get("f32"), /closed/);
    assert.equal(openSafetensors(file).mapped, false, "not mapped unless asked");

    // a header of odd length: every tensor is misaligned, so each is copied into its own buffer
    const odd = path.join(dir, "odd.safetensors");
    const bf = Uint16Array.from({ length: 9 }, (_, i) => 0x4000 + i);
    misalignedFile(odd, f32, bf);
    const g = openSafetensors(odd, { mmap: true });
    assert.ok(g.dataOffset % 2 === 1);
    const a = g.get("a"), b = g.get("b");
    assert.ok(g.mapped);
    assert.deepEqual(a.f32(), f32);
    assert.deepEqual(b.data, bf);
    assert.equal(a.data.buffer.byteLength, f32.byteLength, "copied");
    assert.equal(b.data.buffer.byteLength, bf.byteLength, "copied");
    g.close();
  });

  it(`${fuzzCases(400, 20000)} mutated and truncated files: mapped reads end exactly as reads do (same tensors or the same error)`, () => {
    const r = new Rand(FUZZ_SEED + 51);
    const file = path.join(dir, "good.safetensors");
    writeSafetensors(file, {
      a: new Tensor(r.f32(50), [5, 10]),
      b: new Tensor(Uint16Array.from(r.bytes(40)), [40]),
      c: new Tensor(Int32Array.of(1, -2, 3), [3]),
      d: { dtype: "F16", shape: [2], bytes: r.bytes(4) },
    } as never);
    const good = fs.readFileSync(file);
    const bad = path.join(dir, "mutated.safetensors");
    const outcome = (mmap: boolean): string => {
      try {
        const f = openSafetensors(bad, { mmap });
        try {
          const one = (k: string): string => {
            try {
              const t = f.get(k);
              return `${k}:${t.dtype}:${t.shape}:${Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString("hex")}`;
            } catch (e) {
              return `${k}: ${(e as Error).constructor.name}: ${(e as Error).message}`;
            }
          };
          return f.keys().map(one).join("|");
        } finally {
          f.close();
        }
      } catch (e) {
        return `${(e as Error).constructor.name}: ${(e as Error).message}`;
      }
    };
    let refused = 0;
    for (let c = 0; c < fuzzCases(400, 20000); ++c) {
      const m = Buffer.from(good);
      let bytes: Buffer = m;
      const kind = r.int(4);
      if (kind === 0) bytes = m.subarray(0, r.int(m.length)); // truncated
      else if (kind === 1) for (let i = 0, n = 1 + r.int(4); i < n; ++i) m[r.int(m.length)] = r.int(256);
      else if (kind === 2) for (let i = 0, n = 1 + r.int(3); i < n; ++i) m[8 + r.int(Number(m.readBigUInt64LE(0)))] = r.pick([0x22, 0x2c, 0x30, 0x39, 0x5b, 0x7d, 0x20]); // header punctuation and digits
      else bytes = Buffer.concat([m, r.bytes(1 + r.int(16))]); // trailing bytes
      fs.writeFileSync(bad, bytes);
      const read = outcome(false), mapped = outcome(true);
      assert.equal(mapped, read, `case ${c} (mutation ${kind})`);
      if (/Error: /.test(read)) refused++;
    }
    assert.ok(refused > 0);
  });

  it("a file replaced after opening is read through the descriptor, not mapped (the validated file is the one read)", () => {
    const file = path.join(dir, "swap.safetensors");
    writeSafetensors(file, { w: new Tensor(Float32Array.of(1, 2, 3), [3]) });
    const f = openSafetensors(file, { mmap: true });
    writeSafetensors(file, { w: new Tensor(Float32Array.of(7, 8, 9, 10, 11), [5]) }); // atomic rename: a new inode
    assert.deepEqual(f.get("w").f32(), Float32Array.of(1, 2, 3));
    assert.equal(f.mapped, false);
    f.close();
  });

  it("sharded checkpoints map their shards by default: identical tensors, bf16 weights as views", () => {
    const sd = new Map<string, Tensor>();
    for (let i = 0; i < 6; ++i) sd.set(`layer.${i}.weight`, new Tensor(Uint16Array.from({ length: 1000 + i }, (_, j) => (j * 31 + i) & 0x7fff), [1000 + i]));
    sd.set("norm.weight", new Tensor(Float32Array.from({ length: 64 }, (_, j) => j / 7), [64]));
    const ck = path.join(dir, "sharded");
    const { shards } = writeShardedCheckpoint(ck, sd, { maxShardBytes: 4096 });
    assert.ok(shards.length >= 3);
    const mapped = openShardedCheckpoint(ck), read = openShardedCheckpoint(ck, { mmap: false });
    for (const k of sd.keys()) {
      for (const dtype of [undefined, "float32", "bfloat16"] as const) {
        const a = mapped.get(k, dtype), b = read.get(k, dtype);
        assert.equal(a.dtype, b.dtype);
        assert.deepEqual(a.data, b.data, `${k} ${dtype}`);
        assert.deepEqual(a.data, dtype === undefined || a.dtype === sd.get(k)!.dtype ? sd.get(k)!.data : a.data);
      }
      const stored = mapped.get(k);
      const shardSize = fs.statSync(path.join(ck, mapped.shardOf(k))).size;
      assert.equal(stored.data.buffer.byteLength, shardSize, `${k} views its mapped shard`);
      assert.equal(read.get(k).data.buffer.byteLength, stored.data.byteLength, `${k} read into its own buffer`);
    }
    mapped.close();
    read.close();
    assert.throws(() => openShardedCheckpoint(ck, { mmap: "yes" as never }), TypeError);
  });

  it("a ~200 MB bf16 checkpoint loaded lazily: no anonymous (heap) memory for its tensors; the read path copies it all", function () {
    if (!linux) this.skip();
    this.timeout(120000);
    // two 100 MB shards of bf16 tensors, written without fsync (a test file), with their index
    const ck = path.join(dir, "big");
    fs.mkdirSync(ck);
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (let s = 0; s < 2; ++s) {
      const tensors = new Map<string, Tensor>();
      for (let t = 0; t < 4; ++t) {
        const d = new Uint16Array(12.5 * 2 ** 20); // 25 MiB
        for (let i = 0; i < d.length; i += 997) d[i] = (i + s + t) & 0x7fff;
        tensors.set(`blocks.${s}.${t}.weight`, new Tensor(d, [d.length / 1024, 1024]));
        total += d.byteLength;
      }
      const name = `model-0000${s + 1}-of-00002.safetensors`;
      writeSafetensors(path.join(ck, name), tensors, undefined, { fsync: false });
      for (const k of tensors.keys()) weightMap[k] = name;
    }
    fs.writeFileSync(path.join(ck, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
    const run = (mode: string) => {
      const r = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", path.join(root, "test", "support", "mmap-rss-child.ts"), ck, mode], { cwd: root, encoding: "utf8", timeout: 60000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { bytes: number; sum: number; viewsMapping: boolean; untouched: { anon: number; file: number }; touched: { anon: number; file: number } };
    };
    const mm = run("mmap"), rd = run("read");
    const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    const report = `file ${MiB(total)}; mmap: untouched anon ${MiB(mm.untouched.anon)} file ${MiB(mm.untouched.file)}, touched anon ${MiB(mm.touched.anon)} file ${MiB(mm.touched.file)}; read: anon ${MiB(rd.untouched.anon)}`;
    console.log(`      ${report}`);
    assert.equal(mm.bytes, total);
    assert.equal(mm.sum, rd.sum, "the same data either way");
    assert.ok(mm.viewsMapping && !rd.viewsMapping);
    const slack = 32 * 2 ** 20;
    // lazily loaded: nothing of the file is resident before it is used
    assert.ok(mm.untouched.anon + mm.untouched.file < slack, report);
    // used (every page touched): the pages are the file's (shared, reclaimable), never copies in anonymous memory
    assert.ok(mm.touched.anon < slack, report);
    assert.ok(mm.touched.anon + mm.touched.file < total + slack, report);
    assert.ok(mm.touched.file > 0.9 * total, `the touched pages are mapped file pages: ${report}`);
    // the read path holds a copy of every byte in anonymous memory (this is what mapping avoids)
    assert.ok(rd.untouched.anon > 0.9 * total, report);
  });
});
