import { expect, it } from "vitest";
import { splitUserId } from "../src/verify.js";

it("splits user IDs as gpgme does, name kept without an email", () => {
  expect(splitUserId("Ostree Tester <test@test.com>")).toEqual({ userName: "Ostree Tester", userEmail: "test@test.com" });
  // gpg --generate-key with only Name-Real: ostree prints "Test Key 1 <>".
  expect(splitUserId("Test Key 1")).toEqual({ userName: "Test Key 1", userEmail: "" });
  expect(splitUserId("Name (comment) <a@b>")).toEqual({ userName: "Name", userEmail: "a@b" });
});
