/**
 * Compression of static-delta parts. A part file is one compression byte
 * followed by the payload: 0x00 = stored, 'x' (0x78) = an .xz stream.
 *
 * ostree 2022.7 encodes with liblzma's `lzma_easy_encoder(preset 8,
 * LZMA_CHECK_CRC64)`; `xz -8 -T1 --check=crc64` produces the same bytes
 * (single-threaded mode; -T0 would split into blocks), so parts we compress
 * are byte-identical to ostree's. Encoding spawns the system `xz`.
 *
 * Decoding needs no binary: the xz-embedded WASM decoder (npm
 * `xz-decompress`) streams the output and is cancelled as soon as it passes
 * `maxSize`, so an xz bomb costs at most maxSize + one 64 KiB chunk. It
 * supports CRC32/CRC64/none checks; a stream with a SHA-256 check (which
 * ostree never writes, but liblzma would accept) falls back to `xz -dc`.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { DeltaFormatError, DeltaToolError } from "./errors.js";

export type CompressionKind = "none" | "xz";

/** Part-file compression bytes. */
export const COMPRESSION_NONE = 0x00;
export const COMPRESSION_XZ = 0x78; // 'x'

/** The compression byte that starts a part file of this kind. */
export function compressionByte(kind: CompressionKind): number {
  return kind === "xz" ? COMPRESSION_XZ : COMPRESSION_NONE;
}

/** The kind named by a part file's first byte; anything else is malformed. */
export function compressionKindOf(byte: number): CompressionKind {
  if (byte === COMPRESSION_NONE) return "none";
  if (byte === COMPRESSION_XZ) return "xz";
  throw new DeltaFormatError(`unknown delta part compression byte 0x${byte.toString(16).padStart(2, "0")}`);
}

export interface XzOptions {
  /** The xz executable (default: `xz` on PATH). */
  xzPath?: string;
  /**
   * Encoder preset flag (default "-8", ostree's; "-9e" is ~5 % smaller on
   * bsdiff-heavy parts at ~1.5× the time). Any preset decodes with ostree.
   */
  preset?: XzPreset;
}

/**
 * "-8" = ostree's settings. "-8n" = -8 with the match finder's nice length at
 * its maximum (273) and its search depth at 32 (xz's default for that nice
 * length is 152): ≈ 5 % smaller bsdiff patches for ≈ 1.35× the encoder CPU,
 * same dictionary (so the same decoder memory). Depth 32 instead of 152 costs
 * 0.5–2 % of that gain and saves a quarter of the time (os-v1→v2 patch parts).
 * "-9e" ≈ "-8n" in size, much slower.
 */
export type XzPreset = "-8" | "-8n" | "-9" | "-9e";

const PRESET_ARG: Record<XzPreset, string> = { "-8": "-8", "-8n": "--lzma2=preset=8,nice=273,depth=32", "-9": "-9", "-9e": "-9e" };

/** Arguments that make xz reproduce ostree's liblzma settings. */
export const XZ_ENCODE_ARGS: readonly string[] = ["-8", "-T1", "--check=crc64", "--format=xz", "-c", "-q"];

/** Input given as a file: the program reads it directly, so the caller need not hold it in memory. */
export interface FileInput {
  path: string;
}

/** Runs a program with `input` on stdin; rejects with its stderr on failure. */
function pipeThrough(cmd: string, args: readonly string[], input: Uint8Array | FileInput, outCap = Infinity): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = input instanceof Uint8Array ? -1 : openSync(input.path, "r");
    } catch (e) {
      reject(new DeltaToolError(`${cmd}: cannot open its input: ${(e as Error).message}`));
      return;
    }
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, { stdio: [fd >= 0 ? fd : "pipe", "pipe", "pipe"] });
    } finally {
      // The child has its own copy of the descriptor.
      if (fd >= 0) closeSync(fd);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let capped = false;
    child.stdout!.on("data", (b: Buffer) => {
      outLen += b.length;
      if (outLen > outCap) {
        capped = true;
        child.kill();
        return;
      }
      out.push(b);
    });
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new DeltaToolError(`${cmd}: ${e.message}`)));
    // EPIPE when the child exits early is reported through "close".
    child.stdin?.on("error", () => undefined);
    child.on("close", (code, signal) => {
      if (capped) {
        reject(new DeltaFormatError(`xz stream decompresses past the declared maximum of ${outCap} bytes`));
      } else if (code !== 0) {
        const msg = Buffer.concat(err).toString("utf8").trim();
        reject(new DeltaToolError(`${cmd} ${args.join(" ")} exited ${code ?? signal}: ${msg}`));
      } else {
        resolve(new Uint8Array(Buffer.concat(out, outLen)));
      }
    });
    if (input instanceof Uint8Array) child.stdin!.end(input);
  });
}

/** Compresses a part payload (without the compression byte), given in memory or as a file. */
export async function compress(data: Uint8Array | FileInput, kind: CompressionKind, options: XzOptions = {}): Promise<Uint8Array> {
  if (kind === "none") return data instanceof Uint8Array ? data : new Uint8Array(await readFile(data.path));
  const args = options.preset && options.preset !== "-8" ? [PRESET_ARG[options.preset], ...XZ_ENCODE_ARGS.slice(1)] : XZ_ENCODE_ARGS;
  return pipeThrough(options.xzPath ?? "xz", args, data);
}

export interface DecompressOptions extends XzOptions {
  /** "wasm" (default) uses the bundled decoder; "xz" spawns `xz -dc`. */
  decoder?: "wasm" | "xz";
}

// xz-embedded's XZ_OPTIONS_ERROR: a check type (SHA-256) this build cannot verify.
const XZ_OPTIONS_ERROR = "error code 6";

/**
 * Decompresses a part payload; refuses (DeltaFormatError) input that is
 * corrupt, truncated, or decompresses to more than `maxSize` bytes.
 */
export async function decompress(data: Uint8Array, kind: CompressionKind, maxSize: number, options: DecompressOptions = {}): Promise<Uint8Array> {
  if (!(maxSize >= 0)) throw new RangeError(`decompress: maxSize must be a non-negative number, got ${maxSize}`);
  if (kind === "none") {
    if (data.length > maxSize) throw new DeltaFormatError(`stored part payload of ${data.length} bytes exceeds the maximum of ${maxSize}`);
    return data;
  }
  if (options.decoder === "xz") return xzWithBinary(data, maxSize, options);
  try {
    return await xzWithWasm(data, maxSize);
  } catch (e) {
    if (e instanceof DeltaFormatError && e.message.includes(XZ_OPTIONS_ERROR)) return xzWithBinary(data, maxSize, options);
    throw e;
  }
}

async function xzWithBinary(data: Uint8Array, maxSize: number, options: XzOptions): Promise<Uint8Array> {
  try {
    return await pipeThrough(options.xzPath ?? "xz", ["-dc", "-q", "--format=xz"], data, maxSize);
  } catch (e) {
    if (e instanceof DeltaToolError && !e.message.includes("ENOENT")) throw new DeltaFormatError(`invalid xz stream: ${e.message}`);
    throw e;
  }
}

async function xzWithWasm(data: Uint8Array, maxSize: number): Promise<Uint8Array> {
  // The decoder dereferences a missing first chunk; an empty stream is simply invalid.
  if (data.length === 0) throw new DeltaFormatError("invalid xz stream: empty input");
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(data);
      controller.close();
    },
  });
  // Imported here: its module body builds the decoder (and loads stream/web) at import, which every
  // pull paid before its first request though the system `xz` decodes the parts.
  // The package is CommonJS: its exports arrive as the default export (the declarations say named ones).
  const { XzReadableStream } = ((await import("xz-decompress")) as unknown as { default: typeof import("xz-decompress") }).default;
  const reader = new XzReadableStream(source).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxSize) {
        // Cancelling frees the decoder's global lock for the next stream.
        await reader.cancel();
        throw new DeltaFormatError(`xz stream decompresses past the declared maximum of ${maxSize} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof DeltaFormatError) throw e;
    throw new DeltaFormatError(`invalid xz stream: ${(e as Error).message}`);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Runs async jobs with at most `concurrency` in flight (xz -8 needs ~370 MiB
 * per encoder, so the default is bounded by cores and a cap of 4).
 */
export class CompressionPool {
  readonly concurrency: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(concurrency = Math.min(4, availableParallelism()), private readonly options: XzOptions = {}) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`CompressionPool: concurrency must be ≥ 1, got ${concurrency}`);
    this.concurrency = concurrency;
  }

  /** Jobs currently running. */
  get active(): number {
    return this.running;
  }

  /** `preset` overrides the pool's for this job. */
  async compress(data: Uint8Array | FileInput, kind: CompressionKind, preset?: XzPreset): Promise<Uint8Array> {
    if (this.running >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await compress(data, kind, preset === undefined ? this.options : { ...this.options, preset });
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /** Compresses every payload, results in input order. */
  compressAll(payloads: readonly Uint8Array[], kind: CompressionKind): Promise<Uint8Array[]> {
    return Promise.all(payloads.map((p) => this.compress(p, kind)));
  }
}
