// Named errors with a stable `code`, used across the TypeScript layer.

/** A file that is not valid for its format: names the file and, where known, the byte offset. */
export class CorruptFileError extends Error {
  readonly code = "XLSTM_CORRUPT_FILE";
  constructor(
    readonly file: string,
    message: string,
    readonly byteOffset?: number,
  ) {
    super(`${file}: ${message}${byteOffset !== undefined ? ` (at byte ${byteOffset})` : ""}`);
    this.name = "CorruptFileError";
  }
}

/** The native addon could not be loaded; the message lists every attempt and possible solutions. */
export class NoBinaryFoundError extends Error {
  readonly code = "XLSTM_NO_BINARY";
  constructor(message: string) {
    super(message);
    this.name = "NoBinaryFoundError";
  }
}

/** Shape check helper: `what` has shape `got`, expected `want` (both printed as [a, b, c]). */
export function shapeError(what: string, got: readonly number[], want: string): RangeError {
  return new RangeError(`${what} has shape [${got.join(", ")}], expected ${want}`);
}
