/* core.save_private_file(path, data): writes a file that only its owner can read, atomically:
 * a temporary file beside it (mode 0600), fsync, rename over the old one, fsync the folder.
 * A crash leaves either the old tokens or the new ones, never half of either. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

void flextell_file_open(lua_State *L)
{
  lua_pushcfunction(L, save_private_file);
  lua_setfield(L, -2, "save_private_file");
}
