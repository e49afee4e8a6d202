-- One call as the both-drivers specs describe it ({ opts, req, warm, all }), run by whichever
-- driver takes calls where it runs: libcurl in the spec, cosockets inside the spec's nginx.
-- Returns the JSON text of what both must agree on: the data and attempts, or the error fields.
local flextell = require "flextell"

return function(t)
  local c = flextell.new(t.opts)
  if t.warm then c:get(t.warm) end
  local data, meta, res
  if t.all then
    data, meta = c:all(t.req.path, t.req.query)
    res = { attempts = 0, status = 200 }
  else
    data, meta, res = c:request(t.req)
  end
  if data == nil then
    local err = meta
    return flextell.json.encode { err = { kind = err.kind, code = err.code, status = err.status,
      maybe_sent = err.maybe_sent, attempts = err.attempts } }
  end
  return flextell.json.encode { data = data, attempts = res.attempts, status = res.status }
end
