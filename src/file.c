/* Files for token stores.
 * core.save_private_file(path, data): writes a file that only its owner can read, atomically:
 * a temporary file beside it (mode 0600), fsync, rename over the old one, fsync the folder.
 * A crash leaves either the old tokens or the new ones, never half of either.
 * core.file_lock(path, slot, wait): an advisory lock on one byte (slot) of a lock file, held by
 * the returned object until lock:unlock(), its collection, or the process's end: the kernel
 * releases it when the holder dies. Linux open-file-description locks (F_OFD_SETLK) belong to
 * the open file, not the process, so two holders in one process (two tasks) exclude each other
 * as two processes do; elsewhere each slot is a flock(2) on a file of its own. */
#ifdef __linux__
#define _GNU_SOURCE /* F_OFD_SETLK */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include "fx.h"
#include "crypto.h"

static int io_fail(lua_State *L, const char *what, const char *path, int e)
{
  fx_fail f;
  fx_fail_set(&f, "usage", "io_error", "%s %s: %s", what, path, strerror(e));
  return fx_error_return(L, &f, NULL);
}

static int save_private_file(lua_State *L)
{
  size_t n, plen, off = 0;
  const char *path = luaL_checklstring(L, 1, &plen);
  const char *data = luaL_checklstring(L, 2, &n);
  unsigned char rnd[6];
  char suffix[16];
  const char *slash;
  int fd, e;
  if (fx_random_bytes(rnd, sizeof rnd) != 0) luaL_error(L, "no secure random source is available");
  fx_base64url(rnd, sizeof rnd, suffix);
  lua_pushfstring(L, "%s.%s.tmp", path, suffix);
  {
    const char *tmp = lua_tostring(L, -1);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return io_fail(L, "cannot create", tmp, errno);
    while (off < n) {
      ssize_t w = write(fd, data + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        e = errno;
        close(fd);
        unlink(tmp);
        return io_fail(L, "cannot write", tmp, e);
      }
      off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
      e = errno;
      unlink(tmp);
      return io_fail(L, "cannot flush", tmp, e);
    }
    if (rename(tmp, path) != 0) {
      e = errno;
      unlink(tmp);
      return io_fail(L, "cannot replace", path, e);
    }
  }
  /* make the rename itself durable: fsync the folder that holds the file */
  slash = strrchr(path, '/');
  if (slash == NULL)
    lua_pushliteral(L, ".");
  else if (slash == path)
    lua_pushliteral(L, "/");
  else
    lua_pushlstring(L, path, (size_t)(slash - path));
  fd = open(lua_tostring(L, -1), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- advisory locks ---------------------------------------------------------------------------- */

#define FX_LOCK_MT "flextell.FileLock"

typedef struct fx_lock {
  int fd; /* -1 once released */
} fx_lock;

static int lock_release(lua_State *L)
{
  fx_lock *k = (fx_lock *)luaL_checkudata(L, 1, FX_LOCK_MT);
  int was = k->fd >= 0;
  if (was) {
    close(k->fd); /* closing the only descriptor of the open file releases its lock */
    k->fd = -1;
  }
  lua_pushboolean(L, was);
  return 1;
}

static int lock_held(lua_State *L)
{
  fx_lock *k = (fx_lock *)luaL_checkudata(L, 1, FX_LOCK_MT);
  lua_pushboolean(L, k->fd >= 0);
  return 1;
}

/* Takes the lock on fd; 0, or the errno (EWOULDBLOCK when another holder has it). */
static int take(int fd, long slot, int wait)
{
  int rc;
#ifdef F_OFD_SETLK
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = slot;
  fl.l_len = 1;
  do rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && (errno == EACCES || errno == EAGAIN)) return EWOULDBLOCK;
#else
  (void)slot;
  do rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
  while (rc != 0 && errno == EINTR);
#endif
  return rc == 0 ? 0 : errno;
}

/* core.file_lock(path, slot, wait) -> lock | nil, "busy" | nil, err (usage io_error) */
static int file_lock(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  lua_Integer slot = luaL_checkinteger(L, 2);
  int wait = lua_toboolean(L, 3), fd, e;
  fx_lock *k;
  luaL_argcheck(L, slot >= 0 && slot < 64, 2, "a slot from 0 to 63 expected");
#ifndef F_OFD_SETLK
  if (slot > 0) path = lua_pushfstring(L, "%s.%d", path, (int)slot);
#endif
  k = (fx_lock *)fx_newuserdata(L, sizeof *k, 0);
  k->fd = -1;
  luaL_setmetatable(L, FX_LOCK_MT);
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_fail(L, "cannot open the lock file", path, errno);
  e = take(fd, (long)slot, wait);
  if (e != 0) {
    close(fd);
    if (e == EWOULDBLOCK) {
      lua_pushnil(L);
      lua_pushliteral(L, "busy");
      return 2;
    }
    return io_fail(L, "cannot lock", path, e);
  }
  k->fd = fd;
  return 1;
}

void flextell_file_open(lua_State *L)
{
  if (luaL_newmetatable(L, FX_LOCK_MT)) {
    static const luaL_Reg methods[] = {{"unlock", lock_release}, {"held", lock_held}, {NULL, NULL}};
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__close");
    lua_pushliteral(L, FX_LOCK_MT);
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, save_private_file);
  lua_setfield(L, -2, "save_private_file");
  lua_pushcfunction(L, file_lock);
  lua_setfield(L, -2, "file_lock");
}
