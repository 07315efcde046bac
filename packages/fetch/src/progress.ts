/** Counters a pull reports as it goes (structured progress for library users). */
export interface PullProgress {
  /** Where the pull is: resolving refs, fetching objects, writing refs, done. */
  phase: "summary" | "resolving" | "fetching" | "refs" | "done";
  fetchedMetadata: number;
  fetchedContent: number;
  /** Objects requested so far (fetched + in flight + queued). */
  requestedMetadata: number;
  requestedContent: number;
  /** Objects found in a `--localcache-repo`. */
  localcacheMetadata: number;
  localcacheContent: number;
  /** Objects already in the repo. */
  skipped: number;
  bytesTransferred: number;
  contentBytesWritten: number;
  /** Expected total objects/bytes when known up front (summary commit sizes do not cover trees). */
  totalObjects?: number;
  /** Static delta parts to fetch and their total size (known from the superblocks). */
  deltaPartsTotal?: number;
  deltaBytesTotal?: number;
  deltaPartsFetched?: number;
  elapsedMs: number;
}

export type ProgressListener = (p: Readonly<PullProgress>) => void;

export function emptyProgress(): PullProgress {
  return {
    phase: "summary",
    fetchedMetadata: 0,
    fetchedContent: 0,
    requestedMetadata: 0,
    requestedContent: 0,
    localcacheMetadata: 0,
    localcacheContent: 0,
    skipped: 0,
    bytesTransferred: 0,
    contentBytesWritten: 0,
    elapsedMs: 0,
  };
}

/** GLib's g_format_size (SI, one decimal, "bytes" below 1000), with the no-break space GLib uses. */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return bytes === 1 ? "1 byte" : `${bytes} bytes`;
  const units = ["kB", "MB", "GB", "TB", "PB", "EB"];
  let v = bytes / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)}\u00a0${units[i]}`;
}

/** The line ostree prints when a pull ends (ostree-repo-pull.c's final status). */
export function formatFinalStatus(p: PullProgress, deltaParts: number, dryRun: boolean): string {
  let msg =
    deltaParts > 0
      ? `${deltaParts} delta parts, ${p.fetchedMetadata + p.fetchedContent} loose fetched`
      : `${p.fetchedMetadata} metadata, ${p.fetchedContent} content objects fetched`;
  if (p.localcacheMetadata || p.localcacheContent) msg += ` (${p.localcacheMetadata} meta, ${p.localcacheContent} content local)`;
  const shift = p.bytesTransferred < 1024 ? 1 : 1024;
  msg += `; ${Math.floor(p.bytesTransferred / shift)} ${shift === 1 ? "B" : "KiB"} transferred in ${Math.floor(p.elapsedMs / 1000)} seconds`;
  if (!dryRun) msg += `; ${formatSize(p.contentBytesWritten)} content written`;
  return msg;
}

/**
 * A one-line TTY progress bar (objects, bytes, rate, ETA), redrawn at most
 * every `intervalMs`; `finish` replaces it with the final status line.
 */
export class TtyProgressBar {
  private last = 0;
  private readonly start = Date.now();
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly intervalMs = 100,
  ) {}

  update(p: Readonly<PullProgress>): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    this.stream.write(`\r\x1b[K${this.render(p, now)}`);
  }

  render(p: Readonly<PullProgress>, now = Date.now()): string {
    const done = p.fetchedMetadata + p.fetchedContent + p.skipped + p.localcacheMetadata + p.localcacheContent;
    const requested = Math.max(p.requestedMetadata + p.requestedContent, p.totalObjects ?? 0, done);
    const secs = Math.max((now - this.start) / 1000, 0.001);
    const rate = p.bytesTransferred / secs;
    const width = Math.max(10, Math.min(30, (this.stream.columns ?? 80) - 60));
    const frac = requested ? done / requested : 0;
    const filled = Math.round(frac * width);
    const bar = `[${"=".repeat(filled)}${" ".repeat(width - filled)}]`;
    const remaining = requested - done;
    const objRate = done / secs;
    const eta = objRate > 0 && remaining > 0 ? `${Math.ceil(remaining / objRate)}s` : "--";
    return `Receiving objects: ${bar} ${Math.floor(frac * 100)}% (${done}/${requested}) ${formatSize(p.bytesTransferred)} ${formatSize(rate)}/s ETA ${eta}`;
  }

  finish(line: string): void {
    this.stream.write(`\r\x1b[K${line}\n`);
  }
}
