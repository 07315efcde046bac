import { closeSync, constants as FS, fstatSync, openSync, realpathSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { OstreeError } from "./errors.js";
import type { Repo } from "./repo.js";

/**
 * ostree's repo lock: `.lock` in the repo, locked with open-file-description
 * (OFD) fcntl locks, shared for writers of objects and exclusive for prune.
 * Node cannot issue fcntl itself; `fs-ext` (a small node-gyp addon, built at
 * install) exposes `fcntl(F_SETLK)`. Those are classic POSIX record locks,
 * which the kernel checks against OFD locks, so ostree and ostree-ts exclude
 * each other. (flock(2), and so `flock(1)`, would not: flock and fcntl locks
 * do not see each other on Linux.) POSIX locks belong to the process and are
 * dropped when any descriptor of the file closes, so each lock file is opened
 * once per process and shared by every Repo instance that names it.
 */
export type LockType = "shared" | "exclusive";

export class LockError extends OstreeError {
  override name = "LockError";
}

interface FcntlBinding {
  // Only the callback form fills in a struct flock; fs-ext's fcntlSync passes the raw int.
  fcntl(fd: number, cmd: "setlk", arg: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
}

// Linux values of struct flock's l_type (F_UNLCK is not needed: closing releases).
const F_RDLCK = 0;
const F_WRLCK = 1;

let binding: FcntlBinding | undefined;
function fcntl(): FcntlBinding {
  if (!binding) {
    try {
      binding = createRequire(import.meta.url)("fs-ext") as FcntlBinding;
    } catch (e) {
      throw new LockError(`repo locking needs the fs-ext native module, which failed to load (${(e as Error).message}); set core.locking=false to run without locks`);
    }
  }
  return binding;
}

interface LockState {
  fd: number;
  shared: number;
  exclusive: number;
}

/** One state per lock file per process: counters make the lock recursive, as ostree's is. */
const states = new Map<string, LockState>();

function lockPath(repo: Repo): string {
  return join(realpathSync(repo.path), ".lock");
}

function current(s: LockState): LockType | null {
  return s.exclusive > 0 ? "exclusive" : s.shared > 0 ? "shared" : null;
}

/** One non-blocking F_SETLK on the whole file; false when another process holds a conflicting lock. */
function trySet(fd: number, type: number): Promise<boolean> {
  const f = fcntl();
  return new Promise((resolve, reject) => {
    f.fcntl(fd, "setlk", type, (e) => {
      if (!e) return resolve(true);
      if (e.code === "EAGAIN" || e.code === "EACCES" || e.code === "EWOULDBLOCK") return resolve(false);
      reject(e);
    });
  });
}

/** Lock settings from the repo config: null = locking disabled; -1 = wait forever. */
export function lockTimeoutSeconds(repo: Repo): number | null {
  if (!repo.config.getBoolean("core", "locking", true)) return null;
  return repo.config.getInteger("core", "lock-timeout-secs", 30);
}

/**
 * Take (or deepen) the repo lock. The first attempt does not block; then it
 * retries until `core.lock-timeout-secs` (default 30) has passed, like
 * ostree_repo_lock_push. Exclusive inside shared upgrades; shared inside
 * exclusive keeps the exclusive lock.
 */
export async function lockPush(repo: Repo, type: LockType, timeoutSecs = lockTimeoutSeconds(repo)): Promise<void> {
  if (timeoutSecs === null) return;
  const path = lockPath(repo);
  let s = states.get(path);
  if (!s) {
    s = { fd: openSync(path, "a+", 0o644), shared: 0, exclusive: 0 };
    states.set(path, s);
  }
  const have = current(s);
  if (!(have === "exclusive" || have === type)) {
    const want = type === "exclusive" ? F_WRLCK : F_RDLCK;
    const deadline = timeoutSecs < 0 ? Infinity : Date.now() + timeoutSecs * 1000;
    while (!(await trySet(s.fd, want))) {
      if (Date.now() >= deadline) {
        if (current(s) === null) dropState(path, s);
        throw new LockError(`Locking repo ${type} failed: Resource temporarily unavailable`);
      }
      await sleep(100);
    }
  }
  if (type === "exclusive") s.exclusive++;
  else s.shared++;
}

/** Release one level; the last exclusive level downgrades to shared when shared levels remain. */
export async function lockPop(repo: Repo, type: LockType): Promise<void> {
  if (lockTimeoutSeconds(repo) === null) return;
  const path = lockPath(repo);
  const s = states.get(path);
  if (!s || (type === "exclusive" ? s.exclusive : s.shared) === 0) throw new LockError(`Repo ${type} lock pop requested, but none have been taken`);
  if (type === "exclusive") s.exclusive--;
  else s.shared--;
  const next = current(s);
  if (next === null) {
    // Closing the only descriptor releases the process's POSIX lock at once.
    dropState(path, s);
  } else if (type === "exclusive" && next === "shared") {
    // Downgrading never waits: converting our own write lock to a read lock cannot conflict.
    await trySet(s.fd, F_RDLCK);
  }
}

function dropState(path: string, s: LockState): void {
  closeSync(s.fd);
  states.delete(path);
}

/** Run `fn` holding the repo lock, releasing it however `fn` ends. */
export async function withRepoLock<T>(repo: Repo, type: LockType, fn: () => Promise<T>): Promise<T> {
  await lockPush(repo, type);
  try {
    return await fn();
  } finally {
    await lockPop(repo, type);
  }
}

/** The lock this process holds on the repo (for tests and diagnostics). */
export function heldLock(repo: Repo): LockType | null {
  const s = states.get(lockPath(repo));
  return s ? current(s) : null;
}

/**
 * Lock files of `tmp/staging-*` directories this process holds, by path. POSIX
 * locks belong to the process, so a second lock attempt from this process would
 * succeed, and closing that second descriptor would drop the lock: callers skip
 * these instead of trying them.
 */
const heldTmpdirLocks = new Set<string>();

export function tmpdirLockHeld(lockFile: string): boolean {
  return heldTmpdirLocks.has(lockFile);
}

/**
 * glnx_make_lock_file(LOCK_EX|LOCK_NB) on `lockFile` (created 0600): the fd when
 * locked, null when another process holds it. A lock file unlinked by its
 * previous owner between our open and our lock is opened again.
 */
export async function tryLockTmpdirFile(lockFile: string): Promise<number | null> {
  if (heldTmpdirLocks.has(lockFile)) return null;
  for (;;) {
    const fd = openSync(lockFile, FS.O_RDWR | FS.O_CREAT | FS.O_NOFOLLOW, 0o600);
    let locked = false;
    try {
      locked = await trySet(fd, F_WRLCK);
    } finally {
      if (!locked) closeSync(fd);
    }
    if (!locked) return null;
    if (fstatSync(fd).nlink > 0) {
      heldTmpdirLocks.add(lockFile);
      return fd;
    }
    closeSync(fd);
  }
}

/** glnx_release_lock_file for an exclusive lock: the owner removes the file, then closes it. */
export function releaseTmpdirLock(lockFile: string, fd: number): void {
  rmSync(lockFile, { force: true });
  closeSync(fd);
  heldTmpdirLocks.delete(lockFile);
}
