import { describe, expect, it } from "vitest";
import { mapLimit, TaskPool } from "../src/pool.js";

const tick = () => new Promise<void>((r) => setTimeout(r, 1));

describe("TaskPool", () => {
  it("call: never more than its limit at once, starts in order, settles each call with its result, reports backlog", async () => {
    const pool = new TaskPool(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const results = Array.from({ length: 9 }, (_, i) =>
      pool.call(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
        return i * 10;
      }),
    );
    // 2 running, 7 waiting: more than the limit wait, so a producer should hold off.
    expect(pool.full).toBe(true);
    expect(await Promise.all(results)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80]);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(pool.full).toBe(false);
  });

  it("room() waits until the backlog is down to the limit; idle() until nothing is left, failures included", async () => {
    const pool = new TaskPool(1);
    const calls = Array.from({ length: 5 }, (_, i) =>
      pool.call(async () => {
        await tick();
        if (i === 3) throw new Error("boom");
      }),
    );
    for (const c of calls) c.catch(() => {});
    await pool.room();
    expect(pool.full).toBe(false);
    await pool.idle();
    await expect(calls[3]).rejects.toThrow("boom");
    // A task that throws synchronously still frees its slot.
    await expect(
      pool.call(() => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    await pool.idle();
    expect(await pool.call(async () => 7)).toBe(7);
  });

  it("run: resolves once started (the producer waits while the pool is full); drain rethrows the first failure", async () => {
    const pool = new TaskPool(2);
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    for (let i = 0; i < 6; i++) {
      await pool.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
        done.push(i);
        if (i === 4) throw new Error(`task ${i}`);
      });
      expect(running).toBeLessThanOrEqual(2);
    }
    await expect(pool.drain()).rejects.toThrow("task 4");
    expect(peak).toBe(2);
    expect(done.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    // After a failure, run refuses new work.
    await expect(pool.run(async () => {})).rejects.toThrow("task 4");
  });

  it("run and call share the limit", async () => {
    const pool = new TaskPool(1);
    let running = 0;
    let peak = 0;
    const task = async () => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
    };
    const c = pool.call(task);
    await pool.run(task);
    await Promise.all([c, pool.drain(), pool.call(task)]);
    expect(peak).toBe(1);
  });

  it("mapLimit keeps input order", async () => {
    expect(await mapLimit([3, 1, 2], 2, async (x) => (await tick(), x * 2))).toEqual([6, 2, 4]);
  });
});
