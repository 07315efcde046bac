/**
 * Part decompression with the system `xz`, straight into one buffer. `xz`
 * writes into an already-unlinked temp file, which is read back in one call
 * once it exits: no 64 KiB pipe chunks to collect and concatenate (a 32 MiB
 * part was ~500 callbacks and two copies), and the next part decompresses in
 * another process while this one executes.
 */
import { spawn } from "node:child_process";
import { close, fstatSync, openSync, readSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeltaFormatError, DeltaToolError } from "./errors.js";

let counter = 0;

/** How often the output size is checked against the cap while `xz` runs (an xz bomb stops within one interval). */
const CAP_POLL_MS = 20;

export interface XzDecodeOptions {
  /** The xz executable (default `xz` on PATH). */
  xzPath?: string;
  /** Where the scratch file is created (default the OS temp dir). */
  tmpDir?: string;
}

/** A decoded stream waiting in an unlinked temp file: nothing of it is in this process's memory yet. */
export interface XzDecoded {
  size: number;
  /** Reads the output into one buffer and releases the file (at most once). */
  read(): Uint8Array;
  /** Fills `into` with the output's bytes from `position` on (the file stays open). */
  readAt(into: Uint8Array, position: number): void;
  /** Releases the file without reading it. */
  close(): void;
}

/**
 * Decodes an .xz stream; refuses (DeltaFormatError) a stream that is
 * corrupt, truncated, or decodes to more than `maxSize` bytes. A missing
 * `xz` is a DeltaToolError.
 */
export async function xzDecodeWithBinary(data: Uint8Array, maxSize: number, options: XzDecodeOptions = {}): Promise<Uint8Array> {
  return (await xzDecodeToFile(data, maxSize, options)).read();
}

/**
 * Like xzDecodeWithBinary, but the output stays in the temp file until
 * `read()`: a part decoded ahead of its turn then costs page cache, not RSS.
 */
export function xzDecodeToFile(data: Uint8Array, maxSize: number, options: XzDecodeOptions = {}): Promise<XzDecoded> {
  const cmd = options.xzPath ?? "xz";
  const path = join(options.tmpDir ?? tmpdir(), `xzdecode-${process.pid}-${counter++}`);
  const fd = openSync(path, "wx+", 0o600);
  // The open fd is all xz and we need; nothing is left behind if this process dies.
  unlinkSync(path);
  let open = true;
  // Closing the last fd of an unlinked file frees its blocks: 0.1–0.5 s for a 32 MiB part
  // on a loaded ext4, so it happens on the threadpool, not here.
  const release = () => {
    if (open) close(fd, () => undefined);
    open = false;
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    let capped = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      try {
        f();
      } catch (e) {
        release();
        reject(e);
      }
    };
    const child = spawn(cmd, ["-dc", "-q", "--format=xz"], { stdio: ["pipe", fd, "pipe"] });
    const err: Buffer[] = [];
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    const poll = setInterval(() => {
      if (fstatSync(fd).size > maxSize) {
        capped = true;
        child.kill();
      }
    }, CAP_POLL_MS);
    child.on("error", (e) => finish(() => {
      throw new DeltaToolError(`${cmd}: ${e.message}`);
    }));
    // EPIPE when xz exits early (corrupt input) is reported through "close".
    child.stdin!.on("error", () => undefined);
    child.on("close", (code, signal) =>
      finish(() => {
        const size = fstatSync(fd).size;
        if (capped || size > maxSize) throw new DeltaFormatError(`xz stream decompresses past the declared maximum of ${maxSize} bytes`);
        if (code !== 0) {
          const msg = Buffer.concat(err).toString("utf8").trim();
          throw new DeltaFormatError(`invalid xz stream: ${cmd} exited ${code ?? signal}: ${msg}`);
        }
        const readAt = (into: Uint8Array, position: number): void => {
          if (!open) throw new DeltaToolError("xz output already read or released");
          if (position + into.length > size) throw new DeltaFormatError(`read of [${position}, ${position + into.length}) past the ${size}-byte xz output`);
          for (let at = 0; at < into.length; ) {
            const n = readSync(fd, into, at, into.length - at, position + at);
            if (n === 0) throw new DeltaFormatError(`xz output shrank while reading (${position + at} of ${size} bytes)`);
            at += n;
          }
        };
        resolve({
          size,
          read() {
            try {
              const out = Buffer.allocUnsafeSlow(size);
              readAt(out, 0);
              return out;
            } finally {
              release();
            }
          },
          readAt,
          close: release,
        });
      }),
    );
    child.stdin!.end(data);
  });
}
