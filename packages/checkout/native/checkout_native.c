/*
 * The hot loop of a hardlink checkout in user mode, in C, on two threads:
 * from a bare-user repo (`ostree checkout -U [-H]`), or from an archive repo
 * through its uncompressed-objects-cache (`-U`). JavaScript walks the
 * dirtrees, validates every name and hands over the work; this module only
 * does it. Anything it is not sure about (an object with xattrs, an empty or
 * unreadable file, a symlink target that is not plain ASCII, any failed call)
 * it leaves to the JavaScript walk ("deferred"), which then handles that file
 * exactly as it does without this module: errors keep their messages, and the
 * rules for copies live in one place.
 *
 * Why C: per file the work is an lstat, a getxattr and a link; Node spends
 * several times the syscalls' own time around them, and a worker thread costs
 * ~50 ms to start. Here the kernel calls are nearly all that is left, and two
 * threads share the slow ones (mkdir and symlink allocate inodes).
 *
 * An archive object is linked from the cache only when its `.filez` header
 * has the one layout checked here (see do_archive_file); a cache miss is
 * deferred too, and JavaScript unpacks the object into the cache as before.
 *
 * Use: start(threads, objectsDir[, cacheDir]) starts a thread that waits for
 * tasks (with cacheDir, the objects are an archive repo's);
 * push(session, task) queues one task while JavaScript goes on walking the
 * dirtrees, so the walk overlaps the filesystem work; finish(session, cancel)
 * makes the calling thread help with what is left, then joins and reports. A
 * task is NUL-terminated tokens: "d" PATH: mkdir PATH 0700; "f" CHECKSUM DEST:
 * link (or symlink) the object CHECKSUM to DEST; "m" PATH MODE: chmod and
 * mtime 0, last, children first, unless a file of the task was deferred (then
 * JavaScript does them after that file: a directory may become read-only). The
 * parents of a task's directories exist before it is pushed. A failed mkdir
 * stops everything (the JavaScript side reports it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

enum { LINKED, SYMLINKED, DEFERRED };

typedef struct {
  char *text; /* the task's tokens */
  size_t len;
} task_t;

/* A file left to JavaScript: where its tokens are, and its place in push order (to report in that order). */
typedef struct {
  const char *checksum, *dest;
  size_t task, offset;
} deferred_t;

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t more; /* a task was pushed, or the session was closed */
  task_t *tasks;
  size_t ntasks, cap;
  /* Unclaimed tasks are [lo, hi): the session's thread takes the oldest, finish() the newest. */
  size_t lo, hi;
  int closed;   /* no more pushes */
  int finished; /* finish() has run: the tasks are freed */
  deferred_t *deferred; /* under the lock */
  size_t ndeferred, deferred_cap;
  size_t *unfinished; /* tasks whose "m" ops were left to JavaScript, under the lock */
  size_t nunfinished, unfinished_cap;
  int oom;
  atomic_size_t linked, symlinked;
  atomic_int failed; /* errno of the first failed mkdir, 0 if none */
  atomic_int cancel;
  char objects[PATH_MAX];
  char cache[PATH_MAX]; /* uncompressed-objects-cache of an archive repo; empty for bare-user */
  pthread_t thread;
  int started;
} session_t;

/* Symlink objects longer than this are left to JavaScript (PATH_MAX is 4096 with its NUL). */
#define TARGET_MAX 4096

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* A symlink target without NUL or bytes JavaScript would decode as UTF-8 first (those are its business). */
static int plain_ascii(const char *target, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)target[i];
    if (c == 0 || c >= 0x80) return 0;
  }
  return 1;
}

/* DIR/XX/YYYY….SUFFIX for a 64-character checksum; false when it is not one or the path does not fit. */
static int object_path(char *out, const char *dir, const char *checksum, const char *suffix) {
  return strlen(checksum) == 64 && snprintf(out, PATH_MAX, "%s/%.2s/%s%s", dir, checksum, checksum + 2, suffix) < PATH_MAX;
}

static int do_file(const session_t *s, const char *checksum, const char *dest) {
  char obj[PATH_MAX];
  if (!object_path(obj, s->objects, checksum, ".file")) return DEFERRED;
  struct stat st;
  if (lstat(obj, &st) != 0 || !S_ISREG(st.st_mode)) return DEFERRED;
  unsigned char meta[64];
  /* (uuua(ayay)) with no xattrs is exactly 12 bytes: uid, gid, mode, big-endian. */
  if (lgetxattr(obj, "user.ostreemeta", meta, sizeof meta) != 12) return DEFERRED;
  uint32_t mode = be32(meta + 8);
  if ((mode & ~(uint32_t)(S_IFMT | 07777)) != 0) return DEFERRED;
  if ((mode & S_IFMT) == S_IFLNK) {
    /* The object holds the target and a NUL. */
    if (st.st_size < 2 || st.st_size > TARGET_MAX) return DEFERRED;
    char target[TARGET_MAX + 1];
    int fd = open(obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return DEFERRED;
    ssize_t n = read(fd, target, (size_t)st.st_size + 1);
    close(fd);
    if (n != st.st_size || target[n - 1] != 0 || !plain_ascii(target, (size_t)n - 1)) return DEFERRED;
    return symlink(target, dest) == 0 ? SYMLINKED : DEFERRED;
  }
  if ((mode & S_IFMT) != S_IFREG) return DEFERRED;
  /* Empty files and files the user could not read are copies, not links. */
  if (st.st_size == 0 || (mode & 0400) == 0) return DEFERRED;
  return link(obj, dest) == 0 ? LINKED : DEFERRED;
}

/*
 * An archive object: read its `.filez` header (big-endian u32 length, 4
 * bytes of padding, then the GVariant `(tuuuusa(ayay))`: size, uid, gid,
 * mode, rdev, symlink target, xattrs) and accept only the layout without
 * xattrs: 24 fixed bytes, the target and its NUL, an empty array, and one
 * framing offset (the end of the target) sized by the header's length.
 * Anything else (xattrs, non-ASCII targets, odd modes) is JavaScript's.
 */
static int do_archive_file(const session_t *s, const char *checksum, const char *dest) {
  char path[PATH_MAX];
  if (!object_path(path, s->objects, checksum, ".filez")) return DEFERRED;
  /* O_NOFOLLOW: a symlinked object is refused; O_NONBLOCK: a FIFO cannot hang us. */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return DEFERRED;
  unsigned char h[8 + 24 + TARGET_MAX + 2];
  struct stat st;
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, h, sizeof h) : -1;
  close(fd);
  if (n < 8) return DEFERRED;
  uint32_t len = be32(h);
  /* GVariant sizes framing offsets by the container's length. */
  uint32_t osz = len <= 0xff ? 1 : len <= 0xffff ? 2 : 4;
  if (len < 24 + 1 + osz || (size_t)n < 8 + (size_t)len) return DEFERRED;
  const unsigned char *g = h + 8;
  uint32_t end = 0;
  for (uint32_t i = 0; i < osz; i++) end |= (uint32_t)g[len - osz + i] << (8 * i);
  /* The target's NUL ends right where the (empty) xattr array and the offset begin. */
  if (end != len - osz || g[end - 1] != 0) return DEFERRED;
  const char *target = (const char *)g + 24;
  size_t tlen = end - 25;
  if (!plain_ascii(target, tlen)) return DEFERRED;
  uint32_t mode = be32(g + 16);
  if ((mode & ~(uint32_t)(S_IFMT | 07777)) != 0) return DEFERRED;
  if ((mode & S_IFMT) == S_IFLNK) {
    if (tlen == 0) return DEFERRED;
    return symlink(target, dest) == 0 ? SYMLINKED : DEFERRED;
  }
  if ((mode & S_IFMT) != S_IFREG || tlen != 0) return DEFERRED;
  uint64_t size = 0;
  for (int i = 0; i < 8; i++) size = size << 8 | g[i];
  /* Empty files and files the user could not read are copies; sizes JavaScript cannot hold are its to refuse. */
  if (size == 0 || size > ((uint64_t)1 << 53) - 1 || (mode & 0400) == 0) return DEFERRED;
  if (!object_path(path, s->cache, checksum, ".file")) return DEFERRED;
  return link(path, dest) == 0 ? LINKED : DEFERRED;
}

/* Room for one more element in a growing array; false (and s->oom set) when there is none. Under the lock. */
static int grow(session_t *s, void **items, size_t n, size_t *cap, size_t size) {
  if (n < *cap) return 1;
  size_t c = *cap ? 2 * *cap : 64;
  void *p = realloc(*items, c * size);
  if (!p) {
    s->oom = 1;
    return 0;
  }
  *items = p;
  *cap = c;
  return 1;
}

static void defer(session_t *s, const char *checksum, const char *dest, size_t task, size_t offset) {
  pthread_mutex_lock(&s->lock);
  if (grow(s, (void **)&s->deferred, s->ndeferred, &s->deferred_cap, sizeof *s->deferred)) s->deferred[s->ndeferred++] = (deferred_t){ checksum, dest, task, offset };
  pthread_mutex_unlock(&s->lock);
}

static void leave_unfinished(session_t *s, size_t task) {
  pthread_mutex_lock(&s->lock);
  if (grow(s, (void **)&s->unfinished, s->nunfinished, &s->unfinished_cap, sizeof *s->unfinished)) s->unfinished[s->nunfinished++] = task;
  pthread_mutex_unlock(&s->lock);
}

/* Task number `index`; false once a mkdir has failed (here or elsewhere) or the session was cancelled. */
static int run_task(session_t *s, size_t index, const task_t *t) {
  const char *p = t->text, *end = t->text + t->len;
  int deferred = 0, unfinished = 0;
  /* atime now, mtime OSTREE_TIMESTAMP (0), as the JavaScript walk sets them. */
  const struct timespec times[2] = { { 0, UTIME_NOW }, { 0, 0 } };
  while (p < end) {
    if (atomic_load_explicit(&s->failed, memory_order_relaxed) || atomic_load_explicit(&s->cancel, memory_order_relaxed)) return 0;
    const char *kind = p;
    p += strlen(p) + 1;
    const char *a = p;
    p += strlen(p) + 1;
    if (kind[0] == 'd') {
      if (mkdir(a, 0700) != 0) {
        int expected = 0;
        atomic_compare_exchange_strong(&s->failed, &expected, errno);
        return 0;
      }
      continue;
    }
    if (kind[0] == 'm') {
      const char *mode = p;
      p += strlen(p) + 1;
      if (deferred || unfinished) continue;
      if (chmod(a, (mode_t)strtoul(mode, NULL, 10)) != 0 || utimensat(AT_FDCWD, a, times, 0) != 0) {
        unfinished = 1;
        leave_unfinished(s, index);
      }
      continue;
    }
    const char *dest = p;
    p += strlen(p) + 1;
    switch (s->cache[0] ? do_archive_file(s, a, dest) : do_file(s, a, dest)) {
      case LINKED:
        atomic_fetch_add_explicit(&s->linked, 1, memory_order_relaxed);
        break;
      case SYMLINKED:
        atomic_fetch_add_explicit(&s->symlinked, 1, memory_order_relaxed);
        break;
      default:
        if (!deferred) leave_unfinished(s, index);
        deferred = 1;
        defer(s, a, dest, index, (size_t)(kind - t->text));
    }
  }
  return 1;
}

/*
 * Creating an entry locks its parent directory while ext4 looks for a free
 * inode (slow after many recent deletions), so two threads working among the
 * same siblings mostly wait for each other: one takes the oldest task, the
 * other the newest.
 */
static void claim_loop(session_t *s, int newest, int wait) {
  for (;;) {
    pthread_mutex_lock(&s->lock);
    while (wait && s->lo == s->hi && !s->closed) pthread_cond_wait(&s->more, &s->lock);
    if (s->lo == s->hi) {
      pthread_mutex_unlock(&s->lock);
      return;
    }
    size_t i = newest ? --s->hi : s->lo++;
    task_t t = s->tasks[i];
    pthread_mutex_unlock(&s->lock);
    if (!run_task(s, i, &t)) return;
  }
}

static void *session_thread(void *arg) {
  claim_loop(arg, 0, 1);
  return NULL;
}

/* Close the queue (cancel: and stop claiming), help with what is left if asked, join the thread. */
static void session_end(session_t *s, int cancel, int help) {
  if (cancel) atomic_store(&s->cancel, 1);
  pthread_mutex_lock(&s->lock);
  s->closed = 1;
  pthread_cond_broadcast(&s->more);
  pthread_mutex_unlock(&s->lock);
  if (help) claim_loop(s, 1, 0);
  if (s->started) pthread_join(s->thread, NULL);
  s->started = 0;
}

static void session_free_tasks(session_t *s) {
  for (size_t i = 0; i < s->ntasks; i++) free(s->tasks[i].text);
  free(s->tasks);
  free(s->deferred);
  free(s->unfinished);
  s->tasks = NULL;
  s->deferred = NULL;
  s->unfinished = NULL;
  s->ntasks = s->cap = s->ndeferred = s->deferred_cap = s->nunfinished = s->unfinished_cap = 0;
  s->finished = 1;
}

/* The session's JavaScript handle was collected: normally after finish(), else stop its thread first. */
static void session_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  session_t *s = data;
  if (!s->finished) {
    session_end(s, 1, 0);
    session_free_tasks(s);
  }
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->more);
  free(s);
}

static session_t *session_of(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "checkout_native: not a session");
    return NULL;
  }
  session_t *s = data;
  if (s->finished) {
    napi_throw_error(env, NULL, "checkout_native: session already finished");
    return NULL;
  }
  return s;
}

/*
 * start(threads: number, objectsDir: string, cacheDir?: string): session.
 * threads > 1 starts the helper thread; cacheDir: the objects are an archive
 * repo's, linked from this uncompressed-objects-cache.
 */
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  napi_valuetype cacheType = napi_undefined;
  int32_t threads = 1;
  size_t len, cacheLen = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, argv[0], &threads) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok || (argc > 2 && napi_typeof(env, argv[2], &cacheType) != napi_ok) ||
      (cacheType != napi_undefined && (cacheType != napi_string || napi_get_value_string_utf8(env, argv[2], NULL, 0, &cacheLen) != napi_ok || cacheLen == 0))) {
    napi_throw_type_error(env, NULL, "checkout_native.start(threads, objectsDir, cacheDir?)");
    return NULL;
  }
  if (len >= PATH_MAX - 80 || cacheLen >= PATH_MAX - 80) {
    napi_throw_range_error(env, NULL, "checkout_native: repository path too long");
    return NULL;
  }
  session_t *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, NULL, "checkout_native: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], s->objects, sizeof s->objects, &len);
  if (cacheType == napi_string) napi_get_value_string_utf8(env, argv[2], s->cache, sizeof s->cache, &cacheLen);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->more, NULL);
  atomic_init(&s->linked, 0);
  atomic_init(&s->symlinked, 0);
  atomic_init(&s->failed, 0);
  atomic_init(&s->cancel, 0);
  if (threads > 1) s->started = pthread_create(&s->thread, NULL, session_thread, s) == 0;
  if (napi_create_external(env, s, session_finalize, NULL, &result) != napi_ok) {
    session_finalize(env, s, NULL);
    napi_throw_error(env, NULL, "checkout_native: napi_create_external failed");
    return NULL;
  }
  return result;
}

/* push(session, task: string): false once a mkdir has failed (pushing more is pointless). */
static napi_value push(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "checkout_native.push(session, task)");
    return NULL;
  }
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "checkout_native.push(session, task)");
    return NULL;
  }
  char *text = malloc(len + 1);
  int ok = text && napi_get_value_string_utf8(env, argv[1], text, len + 1, &len) == napi_ok;
  pthread_mutex_lock(&s->lock);
  if (ok && s->ntasks == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    task_t *tasks = realloc(s->tasks, cap * sizeof *tasks);
    if (tasks) {
      s->tasks = tasks;
      s->cap = cap;
    } else {
      ok = 0;
    }
  }
  if (ok) {
    s->tasks[s->ntasks++] = (task_t){ text, len };
    /* Only the session's thread claims before finish(), from the front: the back is still the end of the list. */
    s->hi = s->ntasks;
    pthread_cond_signal(&s->more);
  }
  pthread_mutex_unlock(&s->lock);
  if (!ok) {
    free(text);
    napi_throw_error(env, NULL, "checkout_native: out of memory");
    return NULL;
  }
  napi_get_boolean(env, atomic_load(&s->failed) == 0, &result);
  return result;
}

static int by_push_order(const void *a, const void *b) {
  const deferred_t *x = a, *y = b;
  if (x->task != y->task) return x->task < y->task ? -1 : 1;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * finish(session, cancel: boolean): { linked, symlinked, errno, deferred: string[], unfinished: number[] }
 * deferred is flat (checksum, destination) pairs in push order; unfinished
 * the tasks (numbered from 0 in push order) whose "m" ops were not done.
 * Without cancel the calling thread runs queued tasks too (newest first)
 * until none is left.
 */
static napi_value finish(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result = NULL, v, list;
  bool cancel = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_bool(env, argv[1], &cancel) != napi_ok) {
    napi_throw_type_error(env, NULL, "checkout_native.finish(session, cancel)");
    return NULL;
  }
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  session_end(s, cancel, !cancel);
  if (s->oom) {
    session_free_tasks(s);
    napi_throw_error(env, NULL, "checkout_native: out of memory");
    return NULL;
  }
  qsort(s->deferred, s->ndeferred, sizeof *s->deferred, by_push_order);
  int ok = napi_create_object(env, &result) == napi_ok && napi_create_array_with_length(env, 2 * s->ndeferred, &list) == napi_ok;
  for (size_t i = 0; ok && i < s->ndeferred; i++) {
    ok = napi_create_string_utf8(env, s->deferred[i].checksum, NAPI_AUTO_LENGTH, &v) == napi_ok && napi_set_element(env, list, (uint32_t)(2 * i), v) == napi_ok &&
         napi_create_string_utf8(env, s->deferred[i].dest, NAPI_AUTO_LENGTH, &v) == napi_ok && napi_set_element(env, list, (uint32_t)(2 * i + 1), v) == napi_ok;
  }
  ok = ok && napi_set_named_property(env, result, "deferred", list) == napi_ok && napi_create_array_with_length(env, s->nunfinished, &list) == napi_ok;
  for (size_t i = 0; ok && i < s->nunfinished; i++) {
    ok = napi_create_double(env, (double)s->unfinished[i], &v) == napi_ok && napi_set_element(env, list, (uint32_t)i, v) == napi_ok;
  }
  ok = ok && napi_set_named_property(env, result, "unfinished", list) == napi_ok;
  ok = ok && napi_create_double(env, (double)atomic_load(&s->linked), &v) == napi_ok && napi_set_named_property(env, result, "linked", v) == napi_ok;
  ok = ok && napi_create_double(env, (double)atomic_load(&s->symlinked), &v) == napi_ok && napi_set_named_property(env, result, "symlinked", v) == napi_ok;
  ok = ok && napi_create_int32(env, atomic_load(&s->failed), &v) == napi_ok && napi_set_named_property(env, result, "errno", v) == napi_ok;
  session_free_tasks(s);
  if (!ok) {
    napi_throw_error(env, NULL, "checkout_native: could not build the result");
    return NULL;
  }
  return result;
}

/*
 * read(session, checksum: string, into: Uint8Array): number. Reads the
 * dirtree object CHECKSUM into `into` (the walk decodes every dirtree, and
 * readFileSync costs several times the syscalls): its size when it fits, the
 * size it needs when it does not (nothing read), -1 when it is not a regular
 * file or anything fails (the caller's own read then reports it).
 */
static napi_value read_dirtree(napi_env env, napi_callback_info info) {
  size_t argc = 3, len, cap;
  napi_value argv[3], result;
  char checksum[80], path[PATH_MAX];
  napi_typedarray_type type;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_string_utf8(env, argv[1], checksum, sizeof checksum, &len) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &cap, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "checkout_native.read(session, checksum, into)");
    return NULL;
  }
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  double got = -1;
  int fd = -1;
  struct stat st;
  if (len == 64 && object_path(path, s->objects, checksum, ".dirtree") &&
      (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    if ((size_t)st.st_size > cap) {
      got = (double)st.st_size;
    } else {
      size_t n = 0;
      while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, (char *)data + n, (size_t)st.st_size - n);
        if (r <= 0) break;
        n += (size_t)r;
      }
      if (n == (size_t)st.st_size) got = (double)n;
    }
  }
  if (fd >= 0) close(fd);
  napi_create_double(env, got, &result);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = { { "start", start }, { "push", push }, { "finish", finish }, { "read", read_dirtree } };
  for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
