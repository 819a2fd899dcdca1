// Atomic file replacement, shared by the safetensors writer and checkpoints.
// defines: writeFileAtomic (sync), writeFileAtomicAsync (fs.promises), ByteChunks / AsyncByteChunks.
//
// Recipe (the same as write-file-atomic and the PyTorch/HF savers that care about crashes):
//   1. create a uniquely named temp file in the target's own directory (same filesystem, so rename is atomic);
//   2. write every chunk (looping over short writes), fsync the file, close it;
//   3. rename it over the target, then fsync the directory so the rename itself is durable.
// Readers therefore see either the old file or the complete new one, never a torn one. On any error before the
// rename the temp file is closed and removed and the old file is untouched. A target that is a symlink is
// resolved first, so the link survives and its destination is replaced. An existing target keeps its mode.
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** The bytes to write, in order: a single buffer, or an iterable (e.g. a generator, so chunks can be produced lazily). */
export type ByteChunks = Uint8Array | Iterable<Uint8Array>;
/** As ByteChunks, or an async iterable (for the async writer). */
export type AsyncByteChunks = ByteChunks | AsyncIterable<Uint8Array>;

export interface AtomicWriteOptions {
  /** Permission bits of a new file (the umask applies); an existing target keeps its own mode. Default 0o666. */
  mode?: number;
  /** fsync the file and its directory (default true). Turning it off trades crash safety for speed. */
  fsync?: boolean;
}

/** Largest single write; Node rejects longer lengths on some platforms. */
const MAX_IO = 1 << 30;

function checkArgs(what: string, target: unknown, options: AtomicWriteOptions): void {
  if (typeof target !== "string") throw new TypeError(`${what}: path must be a string, got ${typeof target}`);
  if (target.length === 0) throw new RangeError(`${what}: path is empty`);
  if (target.includes("\0")) throw new RangeError(`${what}: path contains a NUL character`);
  if (options === null || typeof options !== "object") throw new TypeError(`${what}: options must be an object`);
  if (options.mode !== undefined && !(Number.isInteger(options.mode) && options.mode >= 0 && options.mode <= 0o7777))
    throw new RangeError(`${what}: options.mode must be an integer in [0, 0o7777], got ${String(options.mode)}`);
}

function checkChunk(what: string, chunk: unknown, index: number): Uint8Array {
  if (!(chunk instanceof Uint8Array))
    throw new TypeError(`${what}: chunk ${index} is ${chunk === null ? "null" : typeof chunk === "object" ? (chunk as object).constructor?.name : typeof chunk}, expected a Uint8Array`);
  return chunk;
}

/** Follow a symlinked target so that the link is kept; a missing target is used as given. */
function resolveTarget(target: string): string {
  const abs = path.resolve(target);
  try {
    return fs.realpathSync(abs);
  } catch {
    return abs;
  }
}

function tempPathFor(dest: string): string {
  // Keep the name under NAME_MAX (255) whatever the target's length.
  const base = path.basename(dest).slice(0, 200);
  return path.join(path.dirname(dest), `.${base}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

function existingMode(dest: string): number | undefined {
  try {
    const st = fs.statSync(dest);
    return st.isFile() ? st.mode & 0o7777 : undefined;
  } catch {
    return undefined;
  }
}

/** Errors from fsync on a directory that only mean "this platform/filesystem does not do that". */
const DIR_SYNC_UNSUPPORTED = new Set(["EISDIR", "EINVAL", "ENOTSUP", "EPERM", "EACCES", "EBADF"]);

function syncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, "r");
  } catch (e) {
    if (DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? "")) return;
    throw e;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? "")) throw e;
  } finally {
    fs.closeSync(fd);
  }
}

async function syncDirAsync(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(dir, "r");
  } catch (e) {
    if (DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? "")) return;
    throw e;
  }
  try {
    await handle.sync();
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? "")) throw e;
  } finally {
    await handle.close();
  }
}

/**
 * Append the caller's stack to an error raised after an await (fs.promises errors carry almost none).
 * @internal
 */
export function withCallerStack(err: unknown, caller: Error): unknown {
  if (err instanceof Error && caller.stack) {
    const frames = caller.stack.split("\n").slice(1).join("\n");
    err.stack = `${err.stack ?? String(err)}\n    --- called from ---\n${frames}`;
  }
  return err;
}

/**
 * Replace `target` atomically with the concatenation of `chunks` (see the file header for the recipe).
 * @param target file to create or replace; a symlink is followed.
 * @param chunks one Uint8Array or an iterable of them; a generator is consumed lazily, and if it throws, nothing
 *   is replaced and the temp file is removed.
 * @throws TypeError/RangeError for bad arguments; the fs error (ENOENT, EACCES, ENOSPC, EFBIG, ...) otherwise.
 * @example writeFileAtomic("model.safetensors", [header, ...tensorBytes]);
 */
export function writeFileAtomic(target: string, chunks: ByteChunks, options: AtomicWriteOptions = {}): void {
  const what = "writeFileAtomic";
  checkArgs(what, target, options);
  const list: Iterable<Uint8Array> = chunks instanceof Uint8Array ? [chunks] : chunks;
  if (list == null || typeof (list as Iterable<Uint8Array>)[Symbol.iterator] !== "function")
    throw new TypeError(`${what}: chunks must be a Uint8Array or an iterable of Uint8Array`);
  const dest = resolveTarget(target);
  const tmp = tempPathFor(dest);
  const mode = existingMode(dest);
  const doSync = options.fsync ?? true;
  let fd: number | undefined;
  let created = false;
  try {
    fd = fs.openSync(tmp, "wx", mode ?? options.mode ?? 0o666);
    created = true;
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    let index = 0;
    for (const item of list) {
      const chunk = checkChunk(what, item, index++);
      for (let off = 0; off < chunk.byteLength; ) {
        const n = fs.writeSync(fd, chunk, off, Math.min(chunk.byteLength - off, MAX_IO));
        if (n <= 0) throw new Error(`${what}: write to ${tmp} made no progress`);
        off += n;
      }
    }
    if (doSync) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, dest);
    created = false;
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing: the original error is the one to report
      }
    }
    if (created) fs.rmSync(tmp, { force: true });
    throw e;
  }
  if (doSync) syncDir(path.dirname(dest));
}

/**
 * Async twin of writeFileAtomic (fs.promises; the event loop stays free while writing).
 * `chunks` may also be an async iterable. Do not modify the buffers until the promise settles.
 */
export async function writeFileAtomicAsync(target: string, chunks: AsyncByteChunks, options: AtomicWriteOptions = {}): Promise<void> {
  const what = "writeFileAtomicAsync";
  checkArgs(what, target, options);
  const list: Iterable<Uint8Array> | AsyncIterable<Uint8Array> = chunks instanceof Uint8Array ? [chunks] : chunks;
  const iterable =
    list != null &&
    (typeof (list as Iterable<Uint8Array>)[Symbol.iterator] === "function" ||
      typeof (list as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function");
  if (!iterable) throw new TypeError(`${what}: chunks must be a Uint8Array or an (async) iterable of Uint8Array`);
  const caller = new Error();
  const dest = resolveTarget(target);
  const tmp = tempPathFor(dest);
  const mode = existingMode(dest);
  const doSync = options.fsync ?? true;
  let handle: fs.promises.FileHandle | undefined;
  let created = false;
  try {
    handle = await fs.promises.open(tmp, "wx", mode ?? options.mode ?? 0o666);
    created = true;
    if (mode !== undefined) await handle.chmod(mode);
    let index = 0;
    for await (const item of list) {
      const chunk = checkChunk(what, item, index++);
      for (let off = 0; off < chunk.byteLength; ) {
        const { bytesWritten } = await handle.write(chunk, off, Math.min(chunk.byteLength - off, MAX_IO));
        if (bytesWritten <= 0) throw new Error(`${what}: write to ${tmp} made no progress`);
        off += bytesWritten;
      }
    }
    if (doSync) await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.promises.rename(tmp, dest);
    created = false;
    if (doSync) await syncDirAsync(path.dirname(dest));
  } catch (e) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    if (created) await fs.promises.rm(tmp, { force: true });
    throw withCallerStack(e, caller);
  }
}
