/* flextell.core: the C half of lua-flextell. Each concern registers itself from its own file. */
#include "fx.h"
#include "json.h"

FX_EXPORT int luaopen_flextell_core(lua_State *L);

int luaopen_flextell_core(lua_State *L)
{
  lua_newtable(L);
  flextell_buffer_open(L);
  flextell_json_open(L);
  flextell_error_open(L);
  flextell_request_open(L);
  flextell_client_open(L);
  flextell_file_open(L);
  return 1;
}
