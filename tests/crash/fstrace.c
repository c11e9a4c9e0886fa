// fstrace: an LD_PRELOAD shim (test-only) that logs the file-system operations a process makes
// under one directory tree, for the power-loss crash-consistency checker (crashcheck.py).
//
// Environment:
//   MC_FSTRACE_ROOTS  colon-separated absolute directories (realpath'ed by the caller); only
//                     operations on paths below them are logged
//   MC_FSTRACE_LOG    the log file (one operation per line, tab-separated, appended)
//   MC_FSTRACE_DATA   the data file prefix: each process appends the bytes of its logged writes to
//                     "<prefix>.<pid>"; a write line gives the pid and the offset of its bytes there
//
// Each traced call runs under one global mutex together with the append of its log line, so the
// log's order is the order in which the calls took effect (the tracer serialises traced I/O; it
// is a test tool). Files and directories are named by inode, which survives renames: a line says
// which inode a write, truncate or fsync touched and which directory inode a name change lives in.
//
// Lines (fields after the op name; P = parent directory inode, I = inode):
//   create  path P I          open(O_CREAT) made a new regular file
//   trunc   I size            O_TRUNC, ftruncate, a fallocate that grows the file
//   write   I offset len pid dataoff
//   fsync   I                 fsync or fdatasync (of a file or a directory)
//   mkdir   path P I
//   symlink target path P I
//   link    from to P2        hard link; P2 = the new name's directory
//   rename  from to P1 P2 I   P1/P2 = old/new name's directory, I = the inode moved
//   unlink  path P            unlink or remove of a file
//   rmdir   path P
//   sync                      sync/syncfs: everything is durable
//   unsupported name path     a call the checker cannot model touched a traced path
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_ROOTS 8
#define MAX_FDS 65536

static pthread_mutex_t g_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static int g_init;
static int g_log = -1;
static int g_data = -1;
static off_t g_data_off;
static char g_roots[MAX_ROOTS][PATH_MAX];
static int g_nroots;
static ino_t g_fd_ino[MAX_FDS];  // 0: fd not traced
static char g_fd_dir[MAX_FDS];   // 1: the traced fd is a directory

#define REAL(ret, name, ...)                                 \
  static ret (*real_##name)(__VA_ARGS__);                    \
  __attribute__((unused)) static void load_##name(void) {                          \
    if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); \
  }

REAL(int, open, const char*, int, ...)
REAL(int, open64, const char*, int, ...)
REAL(int, openat, int, const char*, int, ...)
REAL(int, openat64, int, const char*, int, ...)
REAL(int, creat, const char*, mode_t)
REAL(ssize_t, write, int, const void*, size_t)
REAL(ssize_t, pwrite, int, const void*, size_t, off_t)
REAL(ssize_t, pwrite64, int, const void*, size_t, off_t)
REAL(ssize_t, writev, int, const struct iovec*, int)
REAL(int, ftruncate, int, off_t)
REAL(int, ftruncate64, int, off_t)
REAL(int, fallocate, int, int, off_t, off_t)
REAL(int, fallocate64, int, int, off_t, off_t)
REAL(int, posix_fallocate, int, off_t, off_t)
REAL(int, posix_fallocate64, int, off_t, off_t)
REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, close, int)
REAL(int, rename, const char*, const char*)
REAL(int, renameat, int, const char*, int, const char*)
REAL(int, renameat2, int, const char*, int, const char*, unsigned)
REAL(int, link, const char*, const char*)
REAL(int, linkat, int, const char*, int, const char*, int)
REAL(int, symlink, const char*, const char*)
REAL(int, symlinkat, const char*, int, const char*)
REAL(int, unlink, const char*)
REAL(int, unlinkat, int, const char*, int)
REAL(int, remove, const char*)
REAL(int, rmdir, const char*)
REAL(int, mkdir, const char*, mode_t)
REAL(int, mkdirat, int, const char*, mode_t)
REAL(ssize_t, sendfile, int, int, off_t*, size_t)
REAL(ssize_t, copy_file_range, int, loff_t*, int, loff_t*, size_t, unsigned)
REAL(void, sync, void)
REAL(int, syncfs, int)

static void raw_write_all(int fd, const void* buf, size_t n) {
  const char* p = buf;
  while (n > 0) {
    ssize_t w = syscall(SYS_write, fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static void init(void) {
  if (g_init) return;
  g_init = 1;
  const char* roots = getenv("MC_FSTRACE_ROOTS");
  const char* log = getenv("MC_FSTRACE_LOG");
  const char* data = getenv("MC_FSTRACE_DATA");
  if (!roots || !log || !data) return;
  const char* p = roots;
  while (*p && g_nroots < MAX_ROOTS) {
    const char* end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > 0 && n < PATH_MAX) {
      memcpy(g_roots[g_nroots], p, n);
      g_roots[g_nroots][n] = '\0';
      ++g_nroots;
    }
    if (!end) break;
    p = end + 1;
  }
  g_log = (int)syscall(SYS_open, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  char name[PATH_MAX];
  snprintf(name, sizeof name, "%s.%d", data, (int)getpid());
  g_data = (int)syscall(SYS_open, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  g_data_off = 0;
  if (g_data < 0) g_log = -1;
}

// A forked child starts with a fresh lock (another thread may have held it) and its own data file.
static void after_fork_child(void) {
  pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
  memcpy(&g_mu, &fresh, sizeof fresh);
  if (g_log >= 0) syscall(SYS_close, g_log);
  if (g_data >= 0) syscall(SYS_close, g_data);
  g_log = g_data = -1;
  g_nroots = 0;
  g_init = 0;
}

__attribute__((constructor)) static void fstrace_setup(void) {
  pthread_atfork(NULL, NULL, after_fork_child);
}

static void lock(void) {
  pthread_mutex_lock(&g_mu);
  init();
}
static void unlock(void) { pthread_mutex_unlock(&g_mu); }

// Absolute, lexically normalised form of `path` relative to `dirfd` (no symlinks resolved:
// the cache's own names never go through a symlink below a traced root).
static int absolute(int dirfd, const char* path, char* out) {
  char base[PATH_MAX];
  if (path[0] == '/') {
    base[0] = '\0';
  } else if (dirfd == AT_FDCWD) {
    if (!getcwd(base, sizeof base)) return 0;
  } else {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(proc, base, sizeof base - 1);
    if (n < 0) return 0;
    base[n] = '\0';
  }
  char joined[2 * PATH_MAX];
  snprintf(joined, sizeof joined, "%s/%s", base, path);
  // Normalise: drop "." and empty parts, resolve "..".
  char* parts[512];
  int np = 0;
  char* save = NULL;
  for (char* tok = strtok_r(joined, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
    if (strcmp(tok, ".") == 0) continue;
    if (strcmp(tok, "..") == 0) {
      if (np > 0) --np;
      continue;
    }
    if (np < 512) parts[np++] = tok;
  }
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < np; ++i) {
    size_t n = strlen(parts[i]);
    if (len + n + 2 >= PATH_MAX) return 0;
    out[len++] = '/';
    memcpy(out + len, parts[i], n);
    len += n;
    out[len] = '\0';
  }
  if (len == 0) strcpy(out, "/");
  return 1;
}

static int traced(const char* abs) {
  for (int i = 0; i < g_nroots; ++i) {
    size_t n = strlen(g_roots[i]);
    if (strncmp(abs, g_roots[i], n) == 0 && (abs[n] == '/' || abs[n] == '\0')) return 1;
  }
  return 0;
}

// Resolves (dirfd, path) to an absolute path below a traced root; 0 if it is not traced.
static int resolve(int dirfd, const char* path, char* out) {
  if (g_log < 0 || !path) return 0;
  return absolute(dirfd, path, out) && traced(out);
}

static ino_t parent_ino(const char* abs) {
  char dir[PATH_MAX];
  strcpy(dir, abs);
  char* slash = strrchr(dir, '/');
  if (!slash) return 0;
  if (slash == dir) slash[1] = '\0';
  else *slash = '\0';
  struct stat st;
  return stat(dir, &st) == 0 ? st.st_ino : 0;
}

static ino_t lstat_ino(const char* abs) {
  struct stat st;
  return lstat(abs, &st) == 0 ? st.st_ino : 0;
}

static void logf_line(const char* fmt, ...) {
  char line[3 * PATH_MAX + 256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  raw_write_all(g_log, line, (size_t)n);
}

static void track_fd(int fd, const char* abs) {
  if (fd < 0 || fd >= MAX_FDS) return;
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  g_fd_ino[fd] = st.st_ino;
  g_fd_dir[fd] = S_ISDIR(st.st_mode) ? 1 : 0;
  (void)abs;
}

static ino_t fd_ino(int fd) { return (fd >= 0 && fd < MAX_FDS) ? g_fd_ino[fd] : 0; }

static int do_open(int dirfd, const char* path, int flags, mode_t mode,
                   int (*call)(int, const char*, int, mode_t)) {
  char abs[PATH_MAX];
  lock();
  if (!resolve(dirfd, path, abs)) {
    unlock();
    return call(dirfd, path, flags, mode);
  }
  int existed = lstat_ino(abs) != 0;
  int fd = call(dirfd, path, flags, mode);
  if (fd >= 0) {
    track_fd(fd, abs);
    ino_t ino = fd_ino(fd);
    if ((flags & O_CREAT) && !existed) {
      logf_line("create\t%s\t%lu\t%lu", abs, (unsigned long)parent_ino(abs), (unsigned long)ino);
    } else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
      logf_line("trunc\t%lu\t0", (unsigned long)ino);
    }
  }
  unlock();
  return fd;
}

static int call_openat(int dirfd, const char* path, int flags, mode_t mode) {
  load_openat();
  return real_openat(dirfd, path, flags, mode);
}

int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return do_open(AT_FDCWD, path, flags, mode, call_openat);
}
int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return do_open(AT_FDCWD, path, flags, mode, call_openat);
}
int __open_2(const char* path, int flags) { return do_open(AT_FDCWD, path, flags, 0, call_openat); }
int __open64_2(const char* path, int flags) {
  return do_open(AT_FDCWD, path, flags, 0, call_openat);
}
int openat(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return do_open(dirfd, path, flags, mode, call_openat);
}
int openat64(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return do_open(dirfd, path, flags, mode, call_openat);
}
int creat(const char* path, mode_t mode) {
  return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, call_openat);
}
int creat64(const char* path, mode_t mode) { return creat(path, mode); }

// Appends the written bytes to the data file and logs where they went.
static void log_write(ino_t ino, off_t offset, const void* buf, size_t n) {
  off_t at = g_data_off;
  raw_write_all(g_data, buf, n);
  g_data_off += (off_t)n;
  logf_line("write\t%lu\t%lld\t%zu\t%d\t%lld", (unsigned long)ino, (long long)offset, n,
            (int)getpid(), (long long)at);
}

ssize_t write(int fd, const void* buf, size_t n) {
  load_write();
  if (fd_ino(fd) == 0) return real_write(fd, buf, n);
  lock();
  int append = (fcntl(fd, F_GETFL) & O_APPEND) != 0;
  off_t offset;
  if (append) {
    struct stat st;
    offset = fstat(fd, &st) == 0 ? st.st_size : 0;
  } else {
    offset = lseek(fd, 0, SEEK_CUR);
  }
  ssize_t w = real_write(fd, buf, n);
  if (w > 0) log_write(fd_ino(fd), offset, buf, (size_t)w);
  unlock();
  return w;
}

static ssize_t do_pwrite(int fd, const void* buf, size_t n, off_t offset) {
  load_pwrite64();
  if (fd_ino(fd) == 0) return real_pwrite64(fd, buf, n, offset);
  lock();
  ssize_t w = real_pwrite64(fd, buf, n, offset);
  if (w > 0) log_write(fd_ino(fd), offset, buf, (size_t)w);
  unlock();
  return w;
}
ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  return do_pwrite(fd, buf, n, offset);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t offset) {
  return do_pwrite(fd, buf, n, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  load_writev();
  if (fd_ino(fd) == 0) return real_writev(fd, iov, cnt);
  lock();
  off_t offset = lseek(fd, 0, SEEK_CUR);
  ssize_t w = real_writev(fd, iov, cnt);
  size_t left = w > 0 ? (size_t)w : 0;
  for (int i = 0; i < cnt && left > 0; ++i) {
    size_t take = iov[i].iov_len < left ? iov[i].iov_len : left;
    log_write(fd_ino(fd), offset, iov[i].iov_base, take);
    offset += (off_t)take;
    left -= take;
  }
  unlock();
  return w;
}

static int do_ftruncate(int fd, off_t size) {
  load_ftruncate64();
  if (fd_ino(fd) == 0) return real_ftruncate64(fd, size);
  lock();
  int r = real_ftruncate64(fd, size);
  if (r == 0) logf_line("trunc\t%lu\t%lld", (unsigned long)fd_ino(fd), (long long)size);
  unlock();
  return r;
}
int ftruncate(int fd, off_t size) { return do_ftruncate(fd, size); }
int ftruncate64(int fd, off_t size) { return do_ftruncate(fd, size); }

// A grow by fallocate is logged as a truncate to the new size when it extends the file (the
// new bytes read as zeros either way); KEEP_SIZE and hole punching are not modelled.
static int after_fallocate(int fd, int r, int mode) {
  if (r == 0 && mode == 0) {
    struct stat st;
    if (fstat(fd, &st) == 0) {
      logf_line("trunc\t%lu\t%lld", (unsigned long)fd_ino(fd), (long long)st.st_size);
    }
  } else if (r == 0) {
    logf_line("unsupported\tfallocate-mode-%d\t%lu", mode, (unsigned long)fd_ino(fd));
  }
  return r;
}
int fallocate(int fd, int mode, off_t off, off_t len) {
  load_fallocate64();
  if (fd_ino(fd) == 0) return real_fallocate64(fd, mode, off, len);
  lock();
  int r = after_fallocate(fd, real_fallocate64(fd, mode, off, len), mode);
  unlock();
  return r;
}
int fallocate64(int fd, int mode, off_t off, off_t len) { return fallocate(fd, mode, off, len); }
int posix_fallocate(int fd, off_t off, off_t len) {
  load_posix_fallocate64();
  if (fd_ino(fd) == 0) return real_posix_fallocate64(fd, off, len);
  lock();
  int r = real_posix_fallocate64(fd, off, len);
  after_fallocate(fd, r == 0 ? 0 : -1, 0);
  unlock();
  return r;
}
int posix_fallocate64(int fd, off_t off, off_t len) { return posix_fallocate(fd, off, len); }

static int do_sync(int fd, int (*call)(int)) {
  if (fd_ino(fd) == 0) return call(fd);
  lock();
  int r = call(fd);
  if (r == 0) logf_line("fsync\t%lu", (unsigned long)fd_ino(fd));
  unlock();
  return r;
}
int fsync(int fd) {
  load_fsync();
  return do_sync(fd, real_fsync);
}
int fdatasync(int fd) {
  load_fdatasync();
  return do_sync(fd, real_fdatasync);
}

int close(int fd) {
  load_close();
  if (fd_ino(fd) == 0) return real_close(fd);
  lock();
  g_fd_ino[fd] = 0;
  g_fd_dir[fd] = 0;
  int r = real_close(fd);
  unlock();
  return r;
}

static int do_rename(int olddir, const char* from, int newdir, const char* to, unsigned flags) {
  load_renameat2();
  char a[PATH_MAX], b[PATH_MAX];
  lock();
  int ta = resolve(olddir, from, a), tb = resolve(newdir, to, b);
  if (!ta && !tb) {
    unlock();
    return real_renameat2(olddir, from, newdir, to, flags);
  }
  ino_t ino = lstat_ino(a);
  int r = real_renameat2(olddir, from, newdir, to, flags);
  if (r == 0) {
    if (ta && tb && flags == 0) {
      logf_line("rename\t%s\t%s\t%lu\t%lu\t%lu", a, b, (unsigned long)parent_ino(a),
                (unsigned long)parent_ino(b), (unsigned long)ino);
    } else {
      logf_line("unsupported\trename\t%s", ta ? a : b);
    }
  }
  unlock();
  return r;
}
int rename(const char* from, const char* to) { return do_rename(AT_FDCWD, from, AT_FDCWD, to, 0); }
int renameat(int od, const char* from, int nd, const char* to) {
  return do_rename(od, from, nd, to, 0);
}
int renameat2(int od, const char* from, int nd, const char* to, unsigned flags) {
  return do_rename(od, from, nd, to, flags);
}

static int do_link(int od, const char* from, int nd, const char* to, int flags) {
  load_linkat();
  char a[PATH_MAX], b[PATH_MAX];
  lock();
  int ta = resolve(od, from, a), tb = resolve(nd, to, b);
  if (!tb) {
    unlock();
    return real_linkat(od, from, nd, to, flags);
  }
  int r = real_linkat(od, from, nd, to, flags);
  if (r == 0) {
    if (ta) logf_line("link\t%s\t%s\t%lu", a, b, (unsigned long)parent_ino(b));
    else logf_line("unsupported\tlink-from-outside\t%s", b);
  }
  unlock();
  return r;
}
int link(const char* from, const char* to) { return do_link(AT_FDCWD, from, AT_FDCWD, to, 0); }
int linkat(int od, const char* from, int nd, const char* to, int flags) {
  return do_link(od, from, nd, to, flags);
}

static int do_symlink(const char* target, int nd, const char* path) {
  load_symlinkat();
  char b[PATH_MAX];
  lock();
  if (!resolve(nd, path, b)) {
    unlock();
    return real_symlinkat(target, nd, path);
  }
  int r = real_symlinkat(target, nd, path);
  if (r == 0) {
    logf_line("symlink\t%s\t%s\t%lu\t%lu", target, b, (unsigned long)parent_ino(b),
              (unsigned long)lstat_ino(b));
  }
  unlock();
  return r;
}
int symlink(const char* target, const char* path) { return do_symlink(target, AT_FDCWD, path); }
int symlinkat(const char* target, int nd, const char* path) {
  return do_symlink(target, nd, path);
}

static int do_unlink(int dirfd, const char* path, int flags) {
  load_unlinkat();
  char a[PATH_MAX];
  lock();
  if (!resolve(dirfd, path, a)) {
    unlock();
    return real_unlinkat(dirfd, path, flags);
  }
  ino_t parent = parent_ino(a);
  int r = real_unlinkat(dirfd, path, flags);
  if (r == 0) logf_line("%s\t%s\t%lu", (flags & AT_REMOVEDIR) ? "rmdir" : "unlink", a,
                        (unsigned long)parent);
  unlock();
  return r;
}
int unlink(const char* path) { return do_unlink(AT_FDCWD, path, 0); }
int unlinkat(int dirfd, const char* path, int flags) { return do_unlink(dirfd, path, flags); }
int rmdir(const char* path) { return do_unlink(AT_FDCWD, path, AT_REMOVEDIR); }
int remove(const char* path) {
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) return rmdir(path);
  return unlink(path);
}

static int do_mkdir(int dirfd, const char* path, mode_t mode) {
  load_mkdirat();
  char a[PATH_MAX];
  lock();
  if (!resolve(dirfd, path, a)) {
    unlock();
    return real_mkdirat(dirfd, path, mode);
  }
  int r = real_mkdirat(dirfd, path, mode);
  if (r == 0) {
    logf_line("mkdir\t%s\t%lu\t%lu", a, (unsigned long)parent_ino(a), (unsigned long)lstat_ino(a));
  }
  unlock();
  return r;
}
int mkdir(const char* path, mode_t mode) { return do_mkdir(AT_FDCWD, path, mode); }
int mkdirat(int dirfd, const char* path, mode_t mode) { return do_mkdir(dirfd, path, mode); }

// Copies into a traced file cannot be replayed from the log: say so (the checker refuses them).
ssize_t sendfile(int out, int in, off_t* off, size_t n) {
  load_sendfile();
  if (fd_ino(out) == 0) return real_sendfile(out, in, off, n);
  lock();
  ssize_t r = real_sendfile(out, in, off, n);
  logf_line("unsupported\tsendfile\t%lu", (unsigned long)fd_ino(out));
  unlock();
  return r;
}
ssize_t copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, size_t n,
                        unsigned flags) {
  load_copy_file_range();
  if (fd_ino(out) == 0) return real_copy_file_range(in, in_off, out, out_off, n, flags);
  lock();
  ssize_t r = real_copy_file_range(in, in_off, out, out_off, n, flags);
  logf_line("unsupported\tcopy_file_range\t%lu", (unsigned long)fd_ino(out));
  unlock();
  return r;
}

void sync(void) {
  load_sync();
  lock();
  real_sync();
  if (g_log >= 0) logf_line("sync");
  unlock();
}
int syncfs(int fd) {
  load_syncfs();
  lock();
  int r = real_syncfs(fd);
  if (g_log >= 0 && r == 0) logf_line("sync");
  unlock();
  return r;
}
