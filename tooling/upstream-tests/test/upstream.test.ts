/**
 * Upstream's installed tests that ostree-ts passes today, run through the
 * runner so a regression fails CI. Skipped when Debian's ostree-tests package
 * is missing, unless OSTREE_TS_INTEROP=required.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const TESTS_DIR = process.env.OSTREE_TESTS_DIR ?? "/usr/libexec/installed-tests/libostree";
const RUNNER = fileURLToPath(new URL("../run.mjs", import.meta.url));
const CLI = fileURLToPath(new URL("../../../apps/cli/dist/ostree-ts.mjs", import.meta.url));

/**
 * Keep in step with the README table: the passing tests, except test-refs and
 * test-prune (≈30–90 s each on 2 cores; run them with run.mjs).
 */
const PASSING = ["test-basic-root", "test-config", "test-corruption", "test-reset-nonlinear", "test-fsck-delete", "test-archivez", "test-commit-timestamp", "test-export"];
// Pull group: every test issue 6 names (test-pull-bareuser and -bareuseronly take ~35 s each, side by side).
PASSING.push("test-pull-commit-only", "test-pull-untrusted", "test-pull-resume", "test-local-pull-depth", "test-summary-view");
PASSING.push("test-pull-bareuser", "test-pull-bareuseronly", "test-pull-depth", "test-pull-mirror-summary", "test-pull-subpath");
PASSING.push("test-pull-summary-caching", "test-local-pull", "test-remote-add");
// Static deltas (issue 5).
PASSING.push("test-delta", "test-delta-sign");
// GPG (`gpgme` in --version) and summaries with collection IDs.
PASSING.push("test-parent", "test-summary-update", "test-remote-gpg-list-keys");
// Collection IDs: find-remotes (config and mount finders) and pulls by collection-ref.
PASSING.push("test-pull-collections", "test-find-remotes", "test-summary-collections", "test-remote-add-collections");
// Refs with collection IDs: refs --collections listing/create/delete, and prune keeping refs/mirrors reachable.
PASSING.push("test-refs-collections", "test-prune-collections");

const available = existsSync(TESTS_DIR);
const required = process.env.OSTREE_TS_INTEROP === "required";

(available || required ? describe : describe.skip)("upstream ostree tests with ostree-ts as ostree", () => {
  it("the passing subset still passes", { timeout: 600_000 }, () => {
    expect(existsSync(TESTS_DIR), `${TESTS_DIR} missing: apt-get install ostree-tests`).toBe(true);
    expect(existsSync(CLI), `${CLI} missing: run \`npx pnpm@10.34.9 --filter ostree-ts build\``).toBe(true);
    const out = mkdtempSync(join(tmpdir(), "ostree-ts-upstream-"));
    try {
      const r = spawnSync(process.execPath, [RUNNER, "--jobs", "2", "--out", out, ...PASSING], { encoding: "utf8" });
      const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")).results as Array<{ name: string; status: string; tail: string }>;
      for (const t of results) expect(t.status, `${t.name}:\n${t.tail}`).toBe("pass");
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
