/* Shims for Lua 5.1 and LuaJIT (see compat.h); empty on 5.2+. */
#include "compat.h"

#ifdef FX_LUA51
#include <math.h>

int fx_isinteger(lua_State *L, int idx)
{
  lua_Number n;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, idx);
  return n == floor(n) && n >= -9007199254740992.0 && n <= 9007199254740992.0;
}

#ifdef FX_NEED_51_AUX
void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

void *luaL_testudata(lua_State *L, int idx, const char *tname)
{
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

void luaL_setmetatable(lua_State *L, const char *tname)
{
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#endif
#else
typedef int fx_compat_unused; /* keeps the translation unit non-empty */
#endif
