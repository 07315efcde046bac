import { describe, expect, test } from "vitest";
import { AdaptiveLimit } from "../src/http.js";

/** A limit on a fake clock, with a settable event-loop utilization. */
function setup(min: number, max: number, initial = 8) {
  const env = { now: 0, busy: 0, maxSeen: 0 };
  const limit = new AdaptiveLimit(min, max, initial, 250, () => env.now, () => env.busy);
  return { env, limit };
}

/**
 * About one measurement window: twice as many requests as slots (so every
 * slot is busy and some wait), finishing one after another 20 ms apart, each
 * with `rate` × 20 ms bytes: the measured throughput is `rate` wherever the
 * window boundaries fall.
 */
async function runWindow(l: AdaptiveLimit, env: { now: number; maxSeen: number }, rate: number): Promise<void> {
  const held: Array<() => void> = [];
  const tasks = Array.from({ length: 2 * l.current }, async () => {
    await l.acquire();
    env.maxSeen = Math.max(env.maxSeen, l.inFlight);
    expect(l.inFlight).toBeLessThanOrEqual(l.current);
    await new Promise<void>((r) => held.push(r));
    l.release("ok", rate * 20);
  });
  for (let left = tasks.length; left > 0; left--) {
    while (held.length === 0) await new Promise((r) => setImmediate(r));
    env.now += 20;
    held.shift()!();
  }
  await Promise.all(tasks);
}

describe("AdaptiveLimit", () => {
  test("grows while throughput rises and the thread has spare time, never past max", async () => {
    const { env, limit } = setup(2, 20);
    const seen: number[] = [];
    for (let w = 0; w < 12; w++) {
      await runWindow(limit, env, 1000 * 2 ** w);
      seen.push(limit.current);
    }
    expect(seen[0]).toBe(8);
    expect(Math.max(...seen)).toBe(20);
    expect(seen.every((c, i) => i === 0 || c >= seen[i - 1]!)).toBe(true);
    expect(env.maxSeen).toBeLessThanOrEqual(20);
  });

  test("growth that does not raise throughput is undone; no probing while the thread is busy", async () => {
    const flat = setup(2, 32);
    const seen: number[] = [];
    for (let w = 0; w < 12; w++) {
      await runWindow(flat.limit, flat.env, 5000);
      seen.push(flat.limit.current);
    }
    // Probes (8 → 10) happen, but each is taken back and the next waits.
    expect(Math.max(...seen)).toBe(10);
    expect(seen.filter((c) => c === 10).length).toBeLessThanOrEqual(3);
    expect(seen[seen.length - 1]).toBe(8);
    const busy = setup(2, 32);
    busy.env.busy = 0.95;
    for (let w = 0; w < 8; w++) await runWindow(busy.limit, busy.env, 1000 * 2 ** w);
    expect(busy.limit.current).toBe(8);
  });

  test("a growth followed by falling throughput is undone", async () => {
    const { env, limit } = setup(2, 32);
    while (limit.current === 8) await runWindow(limit, env, 1000);
    expect(limit.current).toBe(10);
    await runWindow(limit, env, 100);
    expect(limit.current).toBe(8);
  });

  test("retryable failures halve it down to min; other errors leave it", async () => {
    const { limit } = setup(2, 32, 16);
    await limit.acquire();
    limit.failed();
    expect(limit.current).toBe(8);
    limit.release("retry");
    expect(limit.current).toBe(4);
    for (let i = 0; i < 5; i++) limit.failed();
    expect(limit.current).toBe(2);
    await limit.acquire();
    limit.release("error");
    expect(limit.current).toBe(2);
  });

  test("a fixed limit (min = max) never moves and bad bounds are refused", async () => {
    const { env, limit } = setup(3, 3, 3);
    for (let w = 0; w < 6; w++) await runWindow(limit, env, 1000 * 4 ** w);
    limit.failed();
    expect(limit.current).toBe(3);
    expect(env.maxSeen).toBe(3);
    expect(() => new AdaptiveLimit(0, 4)).toThrow(RangeError);
    expect(() => new AdaptiveLimit(5, 4)).toThrow(RangeError);
  });
});
