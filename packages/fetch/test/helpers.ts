import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export type Fault = "drop" | "500" | "404" | "truncate" | "corrupt" | "stall" | null;

export interface StaticServer {
  url: string;
  /** Every request path in order, with status. */
  log: Array<{ path: string; status: number; range?: string; bytes?: number }>;
  /** Decide a fault per request (called for object/delta paths and everything else). */
  fault: (path: string, n: number) => Fault;
  close(): Promise<void>;
}

/**
 * A plain static file server over a repo directory on 127.0.0.1 with fault
 * injection: dropped connections mid-body, 500/404 answers, truncated or
 * corrupted bodies, stalls. Honours `Range: bytes=N-` so resumption is testable.
 */
export async function staticServer(root: string): Promise<StaticServer> {
  const sockets = new Set<import("node:net").Socket>();
  let n = 0;
  const s: StaticServer = {
    url: "",
    log: [],
    fault: () => null,
    close: async () => {
      for (const so of sockets) so.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url!, "http://x").pathname).replace(/^\/+/, "");
    const fault = s.fault(path, n++);
    const file = join(root, path);
    let size: number;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error("not a file");
      size = st.size;
    } catch {
      s.log.push({ path, status: 404 });
      res.writeHead(404, { "content-length": 0 });
      res.end();
      return;
    }
    if (fault === "500" || fault === "404") {
      const status = Number(fault);
      s.log.push({ path, status });
      res.writeHead(status, { "content-length": 0 });
      res.end();
      return;
    }
    if (fault === "stall") {
      s.log.push({ path, status: 0 });
      res.writeHead(200, { "content-length": size });
      res.write((await readFile(file)).subarray(0, Math.floor(size / 2)));
      return; // never finishes: the client's timeout must fire
    }
    let start = 0;
    const range = req.headers.range && /^bytes=(\d+)-$/.exec(req.headers.range);
    if (range && Number(range[1]) < size) start = Number(range[1]);
    const status = start > 0 ? 206 : 200;
    s.log.push({ path, status, range: req.headers.range, bytes: size - start });
    const headers: Record<string, string | number> = { "content-length": size - start, etag: `"${size}"`, "accept-ranges": "bytes" };
    if (status === 206) headers["content-range"] = `bytes ${start}-${size - 1}/${size}`;
    res.writeHead(status, headers);
    if (fault === "drop" || fault === "truncate") {
      const data = (await readFile(file)).subarray(start);
      res.write(data.subarray(0, Math.floor(data.length / 2)));
      // "drop" resets the socket; "truncate" closes it cleanly short of Content-Length.
      if (fault === "drop") res.socket?.resetAndDestroy();
      else res.socket?.end();
      return;
    }
    if (fault === "corrupt") {
      const data = Buffer.from(await readFile(file)).subarray(start);
      if (data.length) data[data.length - 1] = data[data.length - 1]! ^ 0xff;
      res.end(data);
      return;
    }
    createReadStream(file, { start }).pipe(res);
  });
  server.on("connection", (so) => {
    sockets.add(so);
    so.on("close", () => sockets.delete(so));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", () => ok()));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return s;
}
