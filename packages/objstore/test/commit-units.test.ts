import { describe, expect, it } from "vitest";
import { encodeVarUint64, parseStatOverride, parseTimestamp, tarPathRelative } from "../src/index.js";

describe("parseTimestamp (forms checked against ostree commit --timestamp)", () => {
  it.each([
    ["2020-01-01T00:00:00Z", 1577836800],
    ["@1577836800", 1577836800],
    ["2020-01-01T01:00:00+01:00", 1577836800],
    ["2020-01-01T00:00:00.5Z", 1577836800],
    ["2020-01-01 00:00:00 UTC", 1577836800],
  ])("%s", (text, want) => expect(parseTimestamp(text)).toBe(want));

  it("local times follow the process time zone", () => {
    expect(parseTimestamp("2020-01-01 00:00:00")).toBe(new Date(2020, 0, 1).getTime() / 1000);
    expect(parseTimestamp("2020-01-01")).toBe(new Date(2020, 0, 1).getTime() / 1000);
  });

  it("rejects what it cannot parse with ostree's message", () => {
    expect(() => parseTimestamp("garbage")).toThrow("Could not parse 'garbage'");
  });
});

describe("statoverride", () => {
  it("reads decimal modes, = overrides and skips empty lines", () => {
    const s = parseStatOverride("2048 /f\n\n=420 /d/g\n0755 /x\n");
    expect([...s.adds]).toEqual([["/f", 2048], ["/x", 755]]);
    expect([...s.overrides]).toEqual([["/d/g", 420]]);
  });
  it("needs a space", () => {
    expect(() => parseStatOverride("bad\n")).toThrow("Malformed statoverride file (no space found)");
  });
});

describe("helpers", () => {
  it("varuint64 is LEB128", () => {
    expect(encodeVarUint64(0)).toEqual([0]);
    expect(encodeVarUint64(300)).toEqual([0xac, 0x02]);
  });
  it("tar paths are relativised like ostree's path_relative", () => {
    expect(tarPathRelative("./")).toBe("");
    expect(tarPathRelative(".")).toBe("");
    expect(tarPathRelative("/../etc/x")).toBe("etc/x");
    expect(tarPathRelative("././a/b")).toBe("a/b");
    expect(() => tarPathRelative("a/../b")).toThrow("Invalid uplink '..' in path a/../b");
  });
});
