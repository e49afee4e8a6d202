/* The one place where Lua versions differ: 5.4 is the reference, 5.1/LuaJIT is shimmed here. */
#ifndef FLEXTELL_COMPAT_H
#define FLEXTELL_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502

#define FX_LUA51 1

#ifndef luaL_newlibtable
#define luaL_newlibtable(L, l) lua_createtable(L, 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#endif
#ifndef luaL_newlib
#define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_setfuncs(L, l, 0))
#endif

/* LuaJIT 2.1 (it defines LUA_OK) ships luaL_setfuncs, luaL_testudata and luaL_setmetatable;
 * plain Lua 5.1 lacks them. */
#ifndef LUA_OK
void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *luaL_testudata(lua_State *L, int idx, const char *tname);
void luaL_setmetatable(lua_State *L, const char *tname);
#define FX_NEED_51_AUX 1
#endif

#define lua_rawlen(L, i) lua_objlen(L, (i))
#define fx_absindex(L, i) (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)

/* 5.1 has no integer subtype: a number is an integer when it holds an integral value. */
int fx_isinteger(lua_State *L, int idx);
#define fx_tointeger(L, i) ((lua_Integer)lua_tonumber(L, (i)))
#define fx_getfield(L, i, k) (lua_getfield(L, (i), (k)), lua_type(L, -1))
#define fx_rawget(L, i) (lua_rawget(L, (i)), lua_type(L, -1))
#define fx_rawgeti(L, i, n) (lua_rawgeti(L, (i), (n)), lua_type(L, -1))
#define FX_INT_EXACT_BITS 53

/* A userdata's one user value is its environment table on 5.1 (the collector traverses it, so
 * cycles through it are collected, which LuaJIT's weak tables without ephemerons cannot do). */
#define fx_newuserdata(L, size, nuv) lua_newuserdata(L, (size))
#define fx_setuservalue(L, idx) lua_setfenv(L, (idx))
#define fx_getuservalue(L, idx) (lua_getfenv(L, (idx)), lua_type(L, -1))

#else

#define fx_absindex(L, i) lua_absindex(L, (i))
#define fx_isinteger(L, i) lua_isinteger(L, (i))
#define fx_tointeger(L, i) lua_tointeger(L, (i))
#define fx_getfield(L, i, k) lua_getfield(L, (i), (k))
#define fx_rawget(L, i) lua_rawget(L, (i))
#define fx_rawgeti(L, i, n) lua_rawgeti(L, (i), (n))
#define FX_INT_EXACT_BITS 63

#define fx_newuserdata(L, size, nuv) lua_newuserdatauv(L, (size), (nuv))
#define fx_setuservalue(L, idx) lua_setiuservalue(L, (idx), 1)
#define fx_getuservalue(L, idx) lua_getiuservalue(L, (idx), 1)

#endif

/* Pushes an integer that may not fit the Lua number type exactly (5.1: a double). */
#define fx_pushinteger(L, n) lua_pushinteger(L, (lua_Integer)(n))

#if defined(__GNUC__)
#define FX_EXPORT __attribute__((visibility("default")))
#define FX_UNUSED __attribute__((unused))
#else
#define FX_EXPORT
#define FX_UNUSED
#endif

#endif
