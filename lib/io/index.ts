// File I/O: safetensors reading/writing and atomic file replacement.
// defines: openSafetensors(+Async), SafetensorsFile, readSafetensors(+Async), writeSafetensors(+Async),
// serializeSafetensors, halfToFloat, SAFETENSORS_DTYPES, mmapAvailable, writeFileAtomic(+Async).
export {
  SAFETENSORS_DTYPES,
  MAX_HEADER_BYTES,
  SafetensorsFile,
  halfToFloat,
  mmapAvailable,
  openSafetensors,
  openSafetensorsAsync,
  readSafetensors,
  readSafetensorsAsync,
  safetensorsElementSize,
  serializeSafetensors,
  writeSafetensors,
  writeSafetensorsAsync,
} from "./safetensors";
export type {
  OpenSafetensorsOptions,
  RawTensor,
  SafetensorsContents,
  SafetensorsDType,
  SafetensorsInput,
  SafetensorsMetadata,
  SafetensorsTensorInfo,
} from "./safetensors";
export { writeFileAtomic, writeFileAtomicAsync } from "./atomic";
export type { AsyncByteChunks, AtomicWriteOptions, ByteChunks } from "./atomic";
export { openShardedCheckpoint, writeShardedCheckpoint, ShardedCheckpoint } from "./sharded";
export type { ShardIndex, FloatDType, WriteShardedOptions, OpenShardedOptions } from "./sharded";
