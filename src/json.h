/* JSON codec, written for the API's needs: integers stay integers, numbers the Lua number type
 * cannot hold exactly come back as strings, JSON null is flextell.null (a NULL light userdata,
 * equal to cjson.null), decoded arrays carry the array metatable so [] survives a round trip. */
#ifndef FLEXTELL_JSON_H
#define FLEXTELL_JSON_H

#include "buffer.h"

/* Registry key of the metatable that marks a table as a JSON array (flextell.array). */
#define FX_ARRAY_MT "flextell.array"

/* Appends the JSON text of the value at idx to out. Returns 0, FX_JSON_NOMEM, or -1 with a one-line reason in
 * err (e.g. "body.items[2].price: NaN is not valid JSON"); `what` names the root in messages
 * (NULL: "value"). On failure out and the stack are as they were. Object keys are written in
 * byte order, so equal tables give equal text on every Lua. Runs no Lua code (raw access only).
 * Never raises except on memory errors; out belongs to a userdata, so nothing leaks then. */
int fx_json_encode(lua_State *L, int idx, const char *what, fx_buf *out, char *err, size_t errlen);

/* Returned by the codec when memory ran out (no message is built): the caller raises. */
#define FX_JSON_NOMEM (-2)

/* Decodes s[0..len) and pushes the value. Returns 0, FX_JSON_NOMEM, or -1 with nothing pushed and a reason in
 * err ("invalid JSON at byte 17: ...", 1-based). scratch is working memory owned by the caller.
 * Object members that are null are left out; null array elements (and a top-level null) are
 * the NULL light userdata; arrays get the FX_ARRAY_MT metatable. Integer and float literals that
 * the Lua number type cannot hold (beyond int64 on 5.4, beyond 2^53 on LuaJIT, beyond the double
 * range) come back as the literal string, so numbers never silently change. */
int fx_json_decode(lua_State *L, const char *s, size_t len, fx_buf *scratch, char *err,
                   size_t errlen);

/* Sets json_encode(value [, what]), json_decode(s), null, array(t), array_mt and
 * json_mark_array(marker) on the table at the top. A marker (a metatable, or a light userdata
 * such as cjson.empty_array that then encodes as []) is kept in a weak registry table. */
void flextell_json_open(lua_State *L);

#endif
