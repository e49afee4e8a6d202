/* flextell.core: the C half of lua-flextell. Each concern registers itself from its own file. */
#include "fx.h"
#include "json.h"

FX_EXPORT int luaopen_flextell_core(lua_State *L);

int luaopen_flextell_core(lua_State *L)
{
  /* built against a new enough libcurl, but loaded with an older one */
  if (curl_version_info(CURLVERSION_NOW)->version_num < FX_CURL_MIN)
    return luaL_error(L, "flextell.core needs libcurl %s or newer, this process has %s", FX_CURL_MIN_TEXT,
                      curl_version_info(CURLVERSION_NOW)->version);
  lua_newtable(L);
  flextell_buffer_open(L);
  flextell_json_open(L);
  flextell_error_open(L);
  flextell_call_open(L);
  flextell_loop_open(L);
  flextell_client_open(L);
  flextell_file_open(L);
  /* without an asynchronous resolver libcurl resolves names inside curl_multi_perform, so a
   * step of the task scheduler can block on DNS */
  lua_pushboolean(L, (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS) != 0);
  lua_setfield(L, -2, "async_dns");
  return 1;
}
