import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, expectOstreeFsckClean, tempDir } from "@ostree-ts/interop";
import { generateDelta, superblockPath } from "@ostree-ts/deltas";
import { Repo } from "@ostree-ts/objstore";
import { DeltaWorker, PRUNE_STATE_FILE } from "../src/delta-worker.js";
import { RepoServer } from "../src/server.js";
import { oneFileRepo } from "./helpers.js";

let tmp: { path: string; cleanup: () => void };

describeInterop("delta prune grace period across restarts", () => {
  beforeAll(() => {
    tmp = tempDir("server-prune-");
  });
  afterAll(() => tmp?.cleanup());

  test("a restart in the middle of the grace period keeps counting from when the ref moved; a bad state file only restarts the grace", async () => {
    const made = oneFileRepo(tmp.path, "src", "one\n");
    const c1 = made.first;
    const repo = await Repo.open(made.path);
    await generateDelta(repo, { from: null, to: c1 });
    const c2 = made.commit("two\n");
    await generateDelta(repo, { from: c1, to: c2 });
    const stale = join(made.path, superblockPath(null, c1));
    const live = join(made.path, superblockPath(c1, c2));
    const stateFile = join(made.path, PRUNE_STATE_FILE);
    const saved = () => (JSON.parse(readFileSync(stateFile, "utf8")) as { unreferencedSince: Record<string, number> }).unreferencedSince;

    const T0 = 1_700_000_000_000;
    let clock = T0;
    const published: string[][] = [];
    const events: Array<Record<string, unknown>> = [];
    // fromDepth 0 and no scratch deltas: the worker only prunes, so the test sees nothing else happen.
    const worker = () =>
      new DeltaWorker(
        made.path,
        { enabled: true, fromDepth: 0, pruneAfterSeconds: 100 },
        async (names) => void published.push(names),
        (e) => events.push(e),
        () => clock,
      );

    await worker().kick();
    expect(existsSync(stale)).toBe(true);
    expect(saved()).toEqual({ [c1]: T0 });

    // "Restart": a new worker (nothing in memory) 1 ms before the grace ends, then at its end.
    clock = T0 + 99_999;
    const second = worker();
    await second.kick();
    expect(existsSync(stale)).toBe(true);
    expect(saved()).toEqual({ [c1]: T0 });
    clock = T0 + 100_000;
    await second.kick();
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(published).toEqual([[`-${c1}`]]);
    expect(events).toEqual([{ event: "delta-pruned", repo: made.path, delta: c1 }]);
    expect(saved()).toEqual({});
    expectOstreeFsckClean(made.path);

    // A third commit: c1→c2 is now to a former tip. An unreadable state file is reported and the grace starts
    // again from now (the delta is kept longer, never pruned early); the file is rewritten.
    made.commit("three\n");
    writeFileSync(stateFile, "{ not json");
    events.length = 0;
    clock = T0 + 500_000;
    await worker().kick();
    expect(events.map((e) => e.event)).toEqual(["delta-state-error"]);
    expect(String(events[0]!.error)).toContain(stateFile);
    expect(existsSync(live)).toBe(true);
    expect(saved()).toEqual({ [`${c1}-${c2}`]: T0 + 500_000 });
    clock = T0 + 600_000;
    await worker().kick();
    expect(existsSync(live)).toBe(false);

    // The state directory is not served.
    const server = new RepoServer({ repos: [{ name: "", path: made.path }], port: 0, updateSummary: false, log: null, events: null });
    const url = `http://127.0.0.1:${await server.start()}`;
    try {
      expect((await fetch(`${url}/${PRUNE_STATE_FILE}`)).status).toBe(404);
    } finally {
      await server.stop();
    }
  }, 120_000);
});
