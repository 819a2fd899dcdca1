// The chunk length of the chunkwise mLSTM chosen per shape (`chunkSize: "auto"` of ops.mlstm / ops.mlstmLayer).
// Every chunk length computes the same function (XLSTM_SPEC §4.5: chunkwise and recurrent agree to 1e-13 in float64);
// the length trades the inter-chunk states (S/L of them, DK·DV each, written and read again) against the L x L
// intra-chunk weights (S·L of them), so the best length grows with the state size DK·DV.
import { Device } from "../tensor";
import { kindOf } from "./args";

/**
 * The chunk length "auto" picks for heads of DK (query/key) and DV (value) dims on `device` (default "cpu"; the caller
 * still caps it at S, as for an explicit chunkSize).
 * - CPU: 64, or 128 from DK·DV >= 2^15, by measurement (forward + backward on the 2-core AVX-512 machine; the table
 *   is in the README next to ops.mlstm): 64 is the fastest or within 4 % of it for DK = DV = 32, 64, 128; 128 for
 *   256 x 512 (15 % faster than 64), within 3 % of the fastest (256) for 256 x 256.
 * - CUDA: 64, by measurement (G2 on an NVIDIA H100, DK 256 x DV 512, forward + backward: float32 163 ms at 64 against
 *   367 ms at 256; bf16 autocast 138 / 154 / 191 ms at 64 / 128 / 256): the kernels' intra-chunk L x L work grows
 *   with L faster than the inter-chunk state traffic shrinks (the sqrt(DK·DV/2) byte count this rule used before the
 *   GPU run picked 256, the slowest). `xlstm bench --device cuda --workload G2` re-measures it.
 * @throws TypeError / RangeError naming DK, DV or device
 */
export function mlstmAutoChunk(DK: number, DV: number, device: Device = "cpu"): number {
  const op = "ops.mlstmAutoChunk";
  for (const [n, d] of [["DK", DK], ["DV", DV]] as const) {
    if (typeof d !== "number") throw new TypeError(`${op}: ${n} must be a positive integer, got ${kindOf(d)}`);
    if (!Number.isInteger(d) || d < 1 || d > 2 ** 31 - 1) throw new RangeError(`${op}: ${n} must be a positive integer, got ${d}`);
  }
  if (device !== "cpu" && device !== "cuda") throw (typeof device === "string" ? new RangeError(`${op}: device must be "cpu" or "cuda", got the string ${JSON.stringify(String(device).slice(0, 40))}`) : new TypeError(`${op}: device must be "cpu" or "cuda", got ${kindOf(device)}`));
  if (device === "cpu") return DK * DV >= 2 ** 15 ? 128 : 64;
  return 64;
}

/**
 * options.chunkSize of `op`: a positive integer, or "auto" (mlstmAutoChunk); `fallback` when absent.
 * @throws TypeError for a value that is neither a number nor a string, RangeError for other numbers and strings
 */
export function resolveChunkSize(op: string, chunkSize: unknown, fallback: number, DK: number, DV: number, device: Device): number {
  if (chunkSize === undefined) return fallback;
  if (chunkSize === "auto") return mlstmAutoChunk(DK, DV, device);
  const want = `chunkSize must be a positive integer or "auto"`;
  if (typeof chunkSize === "string") throw new RangeError(`${op}: ${want}, got the string ${JSON.stringify(chunkSize.length > 40 ? chunkSize.slice(0, 40) + "..." : chunkSize)}`);
  if (typeof chunkSize !== "number") throw new TypeError(`${op}: ${want}, got ${kindOf(chunkSize)}`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 2 ** 31 - 1) throw new RangeError(`${op}: ${want}, got ${chunkSize}`);
  return chunkSize;
}
