// Layer 2/3: CUDA device memory. The caching allocator runs here over a simulated address space (no GPU needed):
// random alloc/free sequences keep every invariant (allocatorSimCheck), live blocks never overlap, sizes follow the
// rounding rules (computed here from their definition), freed blocks are reused, out-of-memory releases the cache
// and retries before failing, and the process goes on working after a failure. With a GPU, device buffers round
// trip, memory stays flat over many allocations, and an out-of-memory error is recoverable.
import { strict as assert } from "assert";
import { native } from "../lib/native";

const MiB = 1 << 20;
const cuda = native.backends().cuda;
const itCuda = cuda.available ? it : (t: string, fn: () => void) => it.skip(`${t} [skipped: ${cuda.reason}]`, fn);

/** The allocator's rounding rule, from its definition: 512-byte multiples, at least 512. */
const rounded = (n: number) => Math.max(512, Math.ceil(n / 512) * 512);

/** Small deterministic generator (xorshift32). */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

describe("22 CUDA device memory", () => {
  describe("caching allocator (simulated device)", () => {
    it("random alloc/free sequences keep the invariants; live blocks are disjoint and rounded as defined", () => {
      for (const seed of [1, 2, 3]) {
        const r = rng(seed);
        const sim = native.allocatorSimCreate(256 * MiB);
        const live = new Map<number, number>();  // address -> requested bytes
        for (let step = 0; step < 1500; ++step) {
          if (live.size && r() < 0.45) {
            const addrs = [...live.keys()];
            const a = addrs[Math.floor(r() * addrs.length)];
            native.allocatorSimFree(sim, a);
            live.delete(a);
          } else {
            // mostly small, sometimes medium and large requests, sometimes 0 bytes
            const u = r();
            const bytes = u < 0.05 ? 0 : u < 0.7 ? Math.floor(r() * 64 * 1024) : u < 0.95 ? Math.floor(r() * 8 * MiB) : Math.floor(r() * 40 * MiB);
            const a = native.allocatorSimAlloc(sim, bytes);
            if (a === null) continue;  // the simulated device is full: allowed, checked in its own case
            assert.ok(!live.has(a), "an address handed out twice");
            live.set(a, bytes);
          }
          if (step % 25 === 0) assert.equal(native.allocatorSimCheck(sim), "", `seed ${seed} step ${step}`);
        }
        assert.equal(native.allocatorSimCheck(sim), "");
        const spans = [...live].map(([a, n]) => [a, a + rounded(n)]).sort((x, y) => x[0] - y[0]);
        for (let i = 1; i < spans.length; ++i) assert.ok(spans[i][0] >= spans[i - 1][1], "two live blocks overlap");
        const st = native.allocatorSimStats(sim);
        assert.equal(st.activeBlocks, live.size);
        // a block keeps a remainder too small to split (< 512 B small, <= 1 MiB large): at most that much over
        const need = [...live.values()].reduce((s, n) => s + rounded(n), 0);
        assert.ok(st.allocatedBytes >= need && st.allocatedBytes <= need + live.size * MiB, `${st.allocatedBytes} vs ${need}`);
        assert.equal(st.requestedBytes, [...live.values()].reduce((s, n) => s + n, 0));
        assert.equal(st.reservedBytes, st.rawUsedBytes);
        assert.ok(st.allocatedBytes <= st.reservedBytes);
        for (const a of live.keys()) native.allocatorSimFree(sim, a);
        native.allocatorSimEmptyCache(sim);
        const end = native.allocatorSimStats(sim);
        assert.deepEqual([end.allocatedBytes, end.reservedBytes, end.rawUsedBytes, end.rawSegments, end.activeBlocks], [0, 0, 0, 0, 0]);
        assert.equal(native.allocatorSimCheck(sim), "");
      }
    });

    it("a freed block is reused without a new segment; neighbours merge back into one block", () => {
      const sim = native.allocatorSimCreate(64 * MiB);
      const a = native.allocatorSimAlloc(sim, 1000)!;
      const b = native.allocatorSimAlloc(sim, 3000)!;
      const c = native.allocatorSimAlloc(sim, 100)!;
      let st = native.allocatorSimStats(sim);
      assert.equal(st.segmentAllocs, 1, "three small requests share one 2 MiB segment");
      assert.equal(st.reservedBytes, 2 * MiB);
      assert.equal(b, a + rounded(1000));
      assert.equal(c, b + rounded(3000));
      native.allocatorSimFree(sim, b);
      const b2 = native.allocatorSimAlloc(sim, 2900)!;  // best fit: the freed 3072-byte hole
      assert.equal(b2, b);
      st = native.allocatorSimStats(sim);
      assert.equal(st.segmentAllocs, 1);
      assert.ok(st.cacheHits >= 3);
      for (const p of [a, b2, c]) native.allocatorSimFree(sim, p);
      st = native.allocatorSimStats(sim);
      assert.equal(st.cachedBlocks, 1, "all blocks of the segment merged into one");
      assert.equal(native.allocatorSimCheck(sim), "");
    });

    it("small and large requests come from separate pools with the documented segment sizes", () => {
      const sim = native.allocatorSimCreate(512 * MiB);
      native.allocatorSimAlloc(sim, MiB);  // <= 1 MiB: small pool, 2 MiB segment
      assert.equal(native.allocatorSimStats(sim).reservedBytes, 2 * MiB);
      native.allocatorSimAlloc(sim, MiB + 1);  // large pool, < 10 MiB: 20 MiB segment
      assert.equal(native.allocatorSimStats(sim).reservedBytes, 22 * MiB);
      native.allocatorSimAlloc(sim, 11 * MiB);  // best fit: the cached rest of that 20 MiB segment
      assert.equal(native.allocatorSimStats(sim).reservedBytes, 22 * MiB);
      native.allocatorSimAlloc(sim, 29 * MiB + 5);  // >= 10 MiB and no cached block fits: rounded up to 2 MiB
      assert.equal(native.allocatorSimStats(sim).reservedBytes, 52 * MiB);
      native.allocatorSimAlloc(sim, 100);  // small again: the first segment's rest
      assert.equal(native.allocatorSimStats(sim).segments, 3);
      assert.equal(native.allocatorSimCheck(sim), "");
    });

    it("out of memory: the cache is released and the request retried; a failure leaves the allocator usable", () => {
      const sim = native.allocatorSimCreate(40 * MiB);
      // fill the device with small blocks (2 MiB segments), then free them: all cached
      const small: number[] = [];
      for (let a = native.allocatorSimAlloc(sim, MiB); a !== null && small.length < 100; a = native.allocatorSimAlloc(sim, MiB)) small.push(a);
      assert.equal(small.length, 40);
      assert.equal(native.allocatorSimStats(sim).rawUsedBytes, 40 * MiB);
      assert.equal(native.allocatorSimStats(sim).ooms, 1);
      for (const a of small) native.allocatorSimFree(sim, a);
      // 30 MiB only fits once the cached segments are returned
      const big = native.allocatorSimAlloc(sim, 30 * MiB);
      assert.notEqual(big, null);
      let st = native.allocatorSimStats(sim);
      assert.equal(st.segmentFrees, 20);
      assert.equal(st.ooms, 1);
      // more than the device holds: null, counted, and everything still consistent and usable
      assert.equal(native.allocatorSimAlloc(sim, 64 * MiB), null);
      st = native.allocatorSimStats(sim);
      assert.equal(st.ooms, 2);
      assert.equal(native.allocatorSimCheck(sim), "");
      native.allocatorSimFree(sim, big!);
      assert.notEqual(native.allocatorSimAlloc(sim, 30 * MiB), null);
      assert.equal(native.allocatorSimCheck(sim), "");
    });

    it("a CUDA graph capture's memory (cuda/capture_scratch.h): a block freed inside is taken again by a later allocation of the capture (best fit), the graph keeps what was freed inside (blocks from before it too), a block left live is counted", () => {
      const sim = native.allocatorSimCreate(64 * MiB);
      const before = native.allocatorSimAlloc(sim, 1000)!;
      const r = native.allocatorSimCapture(sim, [
        { alloc: 4096 }, // 0: fresh
        { alloc: 65536 }, // 1: fresh
        { free: 1 },
        { free: 0 },
        { alloc: 2048 }, // 2: the best fit of the freed blocks: 0's
        { alloc: 60000 }, // 3: 1's
        { alloc: 70000 }, // 4: fresh (no freed block is large enough)
        { free: 2 },
        { free: 3 },
        { free: 4 },
        { freeAddress: before },
      ]);
      const a = r.addresses;
      assert.equal(a[2], a[0], "the best fit");
      assert.equal(a[3], a[1]);
      assert.equal(new Set([a[0], a[1], a[4], before]).size, 4, "fresh blocks are new blocks");
      assert.equal(r.outliving, 0);
      assert.equal(r.refused, "");
      const sorted = (x: number[]) => [...x].sort((p, q) => p - q);
      assert.deepEqual(sorted(r.keep), sorted([before, a[0], a[1], a[4]]), "the graph keeps every block freed inside it");
      for (const p of r.keep) native.allocatorSimFree(sim, p);  // (graph_free: live blocks of the allocator)
      assert.equal(native.allocatorSimStats(sim).allocatedBytes, 0);
      // left live, and taken again then left live: counted (the capture is refused); the owners' blocks
      const live = native.allocatorSimCapture(sim, [{ alloc: 100 }, { alloc: 200 }, { free: 0 }]);
      assert.equal(live.outliving, 1);
      assert.match(live.refused, /allocated inside the capture outlives it \(1 blocks\)/);
      assert.deepEqual(live.keep, [live.addresses[0]]);
      const again = native.allocatorSimCapture(sim, [{ alloc: 100 }, { free: 0 }, { alloc: 50 }]);
      assert.equal(again.addresses[1], again.addresses[0]);
      assert.equal(again.outliving, 1);
      assert.deepEqual(again.keep, []);
      for (const p of [...live.addresses, again.addresses[0]]) native.allocatorSimFree(sim, p);
      assert.equal(native.allocatorSimStats(sim).allocatedBytes, 0);
      // a block freed twice (inside, or from before): refused, and kept once
      const pre = native.allocatorSimAlloc(sim, 64)!;
      const twice = native.allocatorSimCapture(sim, [{ alloc: 100 }, { free: 0 }, { free: 0 }, { freeAddress: pre }, { freeAddress: pre }]);
      assert.equal(twice.outliving, 0);
      assert.match(twice.refused, /a block freed twice inside the capture \(2 times\)/);
      assert.deepEqual(sorted(twice.keep), sorted([twice.addresses[0], pre]));
      for (const p of twice.keep) native.allocatorSimFree(sim, p);
      assert.equal(native.allocatorSimStats(sim).allocatedBytes, 0);
      assert.equal(native.allocatorSimCheck(sim), "");
      assert.throws(() => native.allocatorSimCapture(sim, [{ free: 0 }]), (e: Error) => e instanceof RangeError && /ops\[0\]\.free must be an integer/.test(e.message));
      assert.throws(() => native.allocatorSimCapture(sim, [{} as never]), (e: Error) => e instanceof TypeError && /ops\[0\] must have alloc, free or freeAddress/.test(e.message));
    });

    it("bad frees and bad handles are refused by name", () => {
      const sim = native.allocatorSimCreate(8 * MiB);
      const a = native.allocatorSimAlloc(sim, 10)!;
      assert.throws(() => native.allocatorSimFree(sim, a + 512), (e: Error) => e instanceof RangeError && /allocatorSimFree: address/.test(e.message));
      native.allocatorSimFree(sim, a);
      assert.throws(() => native.allocatorSimFree(sim, a), (e: Error) => e instanceof RangeError && /already free/.test(e.message));
      assert.throws(() => native.allocatorSimAlloc({} as never, 1), (e: Error) => e instanceof TypeError && /allocatorSimAlloc: sim must be/.test(e.message));
      assert.throws(() => native.allocatorSimAlloc(sim, -1), (e: Error) => e instanceof RangeError && /bytes/.test(e.message));
      assert.equal(native.allocatorSimCheck(sim), "");
    });
  });

  describe("device buffers", () => {
    it("without a usable GPU every entry refuses with the reason (and the process goes on)", function () {
      if (cuda.available) this.skip();
      assert.throws(() => native.cudaMalloc(16), (e: Error) => /^cudaMalloc: CUDA is not available: \S/.test(e.message));
      for (const [name, call] of [
        ["cudaSynchronize", () => native.cudaSynchronize()],
        ["cudaMemoryStats", () => native.cudaMemoryStats()],
        ["cudaEmptyCache", () => native.cudaEmptyCache()],
      ] as const)
        assert.throws(call, (e: Error) => e.message.startsWith(`${name}: CUDA is not available`), name);
      assert.throws(() => native.cudaFree({} as never), (e: Error) => e instanceof TypeError && /cudaFree: buffer must be a device buffer/.test(e.message));
      assert.throws(() => native.cudaUnaryDev("exp", {} as never, {} as never, 1), (e: Error) => e instanceof TypeError && /cudaUnaryDev: x must be a device buffer/.test(e.message));
    });

    itCuda("upload, copy, zero and download round trip exactly; bounds are checked", () => {
      const n = 1000;
      const src = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3);
      const a = native.cudaMalloc(n * 4), b = native.cudaMalloc(n * 4);
      native.cudaUpload(a, 0, src);
      native.cudaCopyBuffer(b, 0, a, 0, n * 4);
      const back = new Float32Array(n);
      native.cudaDownload(b, 0, back);
      assert.deepEqual(back, src);
      native.cudaZero(b);
      native.cudaDownload(b, 0, back);
      assert.ok(back.every((v) => v === 0));
      assert.throws(() => native.cudaUpload(a, 4, src), (e: Error) => e instanceof RangeError && /outside the buffer/.test(e.message));
      native.cudaFree(a);
      native.cudaFree(a);  // idempotent
      assert.throws(() => native.cudaDownload(a, 0, back), (e: Error) => e instanceof TypeError && /already freed/.test(e.message));
      native.cudaFree(b);
    });

    itCuda("device memory stays flat over many allocations; out of memory is an Error after which work goes on", () => {
      native.cudaSynchronize();
      const before = native.cudaMemoryStats();
      for (let i = 0; i < 2000; ++i) native.cudaFree(native.cudaMalloc(((i * 7919) % 4096) * 1024 + 4));
      const after = native.cudaMemoryStats();
      assert.equal(after.allocatedBytes, before.allocatedBytes);
      assert.ok(after.reservedBytes - before.reservedBytes <= 64 * MiB, `reserved grew by ${(after.reservedBytes - before.reservedBytes) / MiB} MiB`);
      assert.throws(() => native.cudaMalloc(after.deviceTotalBytes * 2), (e: Error) => /cudaMalloc: CUDA out of memory: tried to allocate/.test(e.message));
      const ok = native.cudaMalloc(MiB);
      native.cudaFree(ok);
      assert.ok(native.cudaMemoryStats().ooms >= 1);
      native.cudaEmptyCache();
    });
  });
});
