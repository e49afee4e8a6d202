/* JSON codec, written for the API's needs: integers stay integers, numbers the Lua number type
 * cannot hold exactly come back as strings, JSON null is flextell.null (a NULL light userdata,
 * equal to cjson.null), decoded arrays carry the array metatable so [] survives a round trip. */
#ifndef FLEXTELL_JSON_H
#define FLEXTELL_JSON_H

#include "buffer.h"

/* Registry key of the metatable that marks a table as a JSON array (flextell.array). */
#define FX_ARRAY_MT "flextell.array"

/* Appends the JSON text of the value at idx to out. Returns 0, or -1 with a one-line reason in
 * err (e.g. "body.items[2].price: NaN is not valid JSON"); `what` names the root in messages.
 * Never raises except on memory errors; out belongs to a userdata, so nothing leaks then. */
int fx_json_encode(lua_State *L, int idx, const char *what, fx_buf *out, char *err, size_t errlen);

/* Decodes s[0..len) and pushes the value. Returns 0, or -1 with nothing pushed and a reason in
 * err ("invalid JSON at byte 17: ..."). scratch is working memory owned by the caller. */
int fx_json_decode(lua_State *L, const char *s, size_t len, fx_buf *scratch, char *err,
                   size_t errlen);

/* Sets json_encode, json_decode, null, array and array_mt on the table at the top. */
void flextell_json_open(lua_State *L);

#endif
