export { DeltaError, DeltaFormatError, DeltaLimitError, DeltaToolError } from "./errors.js";
export { suffixArray, MAX_SUFFIX_ARRAY_INPUT } from "./sais.js";
export { bsdiff, bsdiffMemoryEstimate, writeOfft, BSDIFF_BYTES_PER_NEW_BYTE, BSDIFF_BYTES_PER_OLD_BYTE, type BsdiffOptions } from "./bsdiff.js";
export { bspatch, readOfft, type BspatchOptions } from "./bspatch.js";
export { crc32 } from "./crc32.js";
export {
  bupsplitFindOfs,
  rollsumChunks,
  computeRollsumMatches,
  rollsumPlan,
  ROLLSUM_BLOB_MAX,
  type RollsumMatch,
  type RollsumResult,
  type RollsumOptions,
  type RollsumSegment,
} from "./rollsum.js";
export {
  compress,
  decompress,
  compressionByte,
  compressionKindOf,
  CompressionPool,
  COMPRESSION_NONE,
  COMPRESSION_XZ,
  XZ_ENCODE_ARGS,
  type CompressionKind,
  type DecompressOptions,
  type XzOptions,
} from "./compress.js";
export * from "./naming.js";
export * from "./superblock.js";
export * from "./part.js";
export * from "./index-file.js";
export * from "./repo-deltas.js";
export * from "./apply.js";
export * from "./matching.js";
export * from "./generate.js";
export * from "./show.js";
export { BsdiffPool, BsdiffWorkerLostError, type BsdiffPoolOptions } from "./bsdiff-pool.js";
