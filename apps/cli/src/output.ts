/** Buffered stdout that keeps byte order and survives a closed pipe (like `ostree ... | head`). */
export class Output {
  private chunks: Buffer[] = [];
  private size = 0;
  private pending: Promise<void> = Promise.resolve();
  private broken = false;

  constructor(private readonly fd: NodeJS.WriteStream = process.stdout) {
    fd.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") this.broken = true;
      else throw e;
    });
  }

  print(s: string): void {
    this.write(Buffer.from(s, "utf8"));
  }

  write(b: Uint8Array): void {
    if (this.broken) return;
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    this.chunks.push(buf);
    this.size += buf.length;
    if (this.size >= 1 << 16) void this.flush();
  }

  /** Write everything buffered; resolves when the stream accepted it. */
  flush(): Promise<void> {
    if (this.chunks.length === 0) return this.pending;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    this.pending = this.pending.then(
      () =>
        new Promise<void>((resolve) => {
          if (this.broken) return resolve();
          if (this.fd.write(data)) resolve();
          else this.fd.once("drain", resolve);
        }),
    );
    return this.pending;
  }
}
