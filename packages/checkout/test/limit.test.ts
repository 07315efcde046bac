import { describe, expect, it } from "vitest";
import { Limiter } from "../src/limit.js";

const tick = () => new Promise<void>((r) => setTimeout(r, 1));

describe("Limiter", () => {
  it("never runs more than its limit at once, starts calls in order, and reports backlog", async () => {
    const l = new Limiter(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const results = Array.from({ length: 9 }, (_, i) =>
      l.run(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
        return i * 10;
      }),
    );
    // 2 running, 7 waiting: more than the limit wait, so a producer should hold off.
    expect(l.full).toBe(true);
    expect(await Promise.all(results)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80]);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(l.full).toBe(false);
  });

  it("room() waits until the backlog is down to the limit; idle() until nothing is left, failures included", async () => {
    const l = new Limiter(1);
    const calls = Array.from({ length: 5 }, (_, i) => l.run(async () => {
      await tick();
      if (i === 3) throw new Error("boom");
    }));
    for (const c of calls) c.catch(() => {});
    await l.room();
    expect(l.full).toBe(false);
    await l.idle();
    await expect(calls[3]).rejects.toThrow("boom");
    // A call that throws synchronously still frees its slot.
    await expect(l.run(() => {
      throw new Error("sync");
    })).rejects.toThrow("sync");
    await l.idle();
    expect(await l.run(async () => 7)).toBe(7);
  });
});
