-- The fixed-response server of `make bench`: Debian's nginx serving bodies written once into a
-- temporary directory, so every client measures the same bytes and the server does as little as
-- it can (static files from the open-file cache, kept-alive connections, no Lua, no logging).
--
--   GET  /api/v1/customers/1            one customer in an object envelope ({"data":{..},"meta":{..}})
--   GET  /api/v1/items?limit=100        a list of 10,000 items in 100 cursor pages of 100
--   GET  /api/v1/few?limit=100          1,000 items in 10 pages     } the memory case: the same
--   GET  /api/v1/many?limit=100         100,000 items in 1000 pages } pages, a hundred times more
--   GET  /api/v1/export                 one list body of 3 MiB (no paging)
--   GET, POST /api/v1/notes             one small object, the same bytes for either method
--
-- Pages are picked by the query's cursor (`map $arg_cursor`); each page's meta carries the
-- next cursor, has_more and total, as the API's cursor style does (the last page: cursor null,
-- has_more false). Cursors look opaque to the clients, which never build one.
-- Plain HTTP on one port and HTTPS (a throw-away self-signed certificate) on another.
local BENCH_DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local util = dofile(BENCH_DIR .. "/util.lua")
local quote, run, capture = util.quote, util.run, util.capture

local M = {}

M.PER_PAGE = 100
M.LISTS = {
  items = { pages = 100 },
  few = { pages = 10 },
  many = { pages = 1000 },
}

local FIRST = { "Ada", "Grace", "Alan", "Barbara", "Edsger", "Margaret", "Donald", "Frances", "Ken",
  "Radia", "Niklaus", "Hedy", "John", "Karen", "Tim", "Sophie", "Leslie" }
local LAST = { "Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Hamilton", "Knuth", "Allen",
  "Thompson", "Perlman", "Wirth", "Lamarr", "McCarthy", "Jones", "Berners-Lee", "Wilson", "Lamport" }
local TAGS = { '["vip"]', "[]", '["newsletter"]', '["vip","newsletter"]', '["b2b"]' }
local NOTES = { '"Prefers morning appointments."', "null", '"Allergic to latex."', '"Call before 5 pm."' }

-- One customer record as JSON text (about 300 bytes): strings, integers, a float, an array, a
-- nested object and a null, like the API's records.
local function customer(i)
  local first, last = FIRST[(i - 1) % #FIRST + 1], LAST[(i * 7 - 1) % #LAST + 1]
  local day = i % 28 + 1
  return string.format('{"id":%d,"first_name":"%s","last_name":"%s","email":"%s.%s%d@example.com",' ..
    '"phone":"+1-555-%04d","tags":%s,"notes":%s,"balance":%d.%02d,"visits":%d,' ..
    '"address":{"city":"Springfield","zip":"%05d"},' ..
    '"created_at":"2025-01-%02dT09:00:00Z","updated_at":"2025-02-%02dT17:30:00Z","deleted_at":null}',
    i, first, last, first:lower(), last:lower(), i, i % 10000, TAGS[i % #TAGS + 1], NOTES[i % #NOTES + 1],
    (i * 37) % 1000, i % 100, i % 50, (i * 7919) % 100000, day, day)
end
M.customer = customer

local function cursor_of(list, page)
  -- opaque enough: clients only copy it back
  return string.format("%s%05dk%04x", list:sub(1, 1), page, (page * 40503) % 65536)
end

local function page_body(list, page, pages)
  local items = {}
  local first = (page - 1) * M.PER_PAGE
  for j = 1, M.PER_PAGE do items[j] = customer(first + j) end
  local total = pages * M.PER_PAGE
  local meta
  if page < pages then
    meta = string.format('{"cursor":"%s","has_more":true,"total":%d}', cursor_of(list, page + 1), total)
  else
    meta = string.format('{"cursor":null,"has_more":false,"total":%d}', total)
  end
  return '{"data":[' .. table.concat(items, ",") .. '],"meta":' .. meta .. "}"
end

-- Writes every body under dir/www; returns what the clients need to know about them.
function M.generate(dir)
  local www = dir .. "/www"
  assert(run("mkdir -p " .. quote(www .. "/v1")))
  local info = { lists = {} }
  util.write_file(www .. "/v1/customer.json",
    '{"data":' .. customer(1) .. ',"meta":{"request_id":"req_7f3a9c","api_version":"v1"}}')
  local note = '{"data":{"id":501,"customer_id":1,"text":"Called back, all good.","created_at":' ..
    '"2025-03-01T10:00:00Z"},"meta":{"request_id":"req_5e1b02"}}'
  info.note = note
  for name, l in pairs(M.LISTS) do
    assert(run("mkdir -p " .. quote(www .. "/v1/" .. name)))
    for p = 1, l.pages do
      local file = p == 1 and "first" or cursor_of(name, p)
      util.write_file(www .. "/v1/" .. name .. "/" .. file .. ".json", page_body(name, p, l.pages))
    end
    info.lists[name] = { pages = l.pages, items = l.pages * M.PER_PAGE,
      page_bytes = #page_body(name, 2, l.pages) }
  end
  -- the 3 MiB body: as many records as fit
  local parts, size, n = {}, 0, 0
  while size < 3 * 1024 * 1024 - 300 do
    n = n + 1
    parts[n] = customer(n)
    size = size + #parts[n] + 1
  end
  local export = '{"data":[' .. table.concat(parts, ",") .. '],"meta":{"total":' .. n .. "}}"
  util.write_file(www .. "/v1/export.json", export)
  info.export = { items = n, bytes = #export, file = www .. "/v1/export.json" }
  info.small_bytes = #util.read_file(www .. "/v1/customer.json")
  return info
end

local function conf(dir, port, tls_port, user_root, note)
  local www = dir .. "/www"
  local lines = {
    user_root and "user root;" or "",
    "worker_processes 1;",
    "daemon on;",
    string.format('pid "%s/nginx.pid";', dir),
    string.format('error_log "%s/error.log" warn;', dir),
    "events { worker_connections 512; }",
    "http {",
    "  access_log off;",
    "  server_tokens off;",
    "  sendfile on;",
    "  tcp_nodelay on;",
    "  etag off;",
    "  keepalive_requests 10000000;",
    "  keepalive_timeout 300s;",
    "  open_file_cache max=4096 inactive=600s;",
    "  open_file_cache_valid 600s;",
    "  client_max_body_size 1m;",
    "  client_body_buffer_size 64k;",
    string.format('  client_body_temp_path "%s/tmp/body";', dir),
    string.format('  proxy_temp_path "%s/tmp/proxy";', dir),
    string.format('  fastcgi_temp_path "%s/tmp/fastcgi";', dir),
    string.format('  uwsgi_temp_path "%s/tmp/uwsgi";', dir),
    string.format('  scgi_temp_path "%s/tmp/scgi";', dir),
    "  default_type application/json;",
    "  types { application/json json; }",
    -- the first page has no cursor; anything but a cursor's characters finds no file
    '  map $arg_cursor $page { "" first; "~^[a-z0-9]+$" $arg_cursor; default none; }',
    "  server {",
    string.format("    listen 127.0.0.1:%d;", port),
    string.format("    listen 127.0.0.1:%d ssl;", tls_port),
    string.format('    ssl_certificate "%s/tls/cert.pem";', dir),
    string.format('    ssl_certificate_key "%s/tls/key.pem";', dir),
    "    ssl_protocols TLSv1.2 TLSv1.3;",
    "    ssl_session_cache shared:bench:1m;",
    string.format('    root "%s";', www),
    "    location = /api/v1/customers/1 { try_files /v1/customer.json =404; }",
    "    location = /api/v1/export { try_files /v1/export.json =404; }",
    -- a named capture: the map's regex would overwrite $1
    "    location ~ ^/api/v1/(?<list>items|few|many)$ { try_files /v1/$list/$page.json =404; }",
    -- `return` answers any method with the same bytes; nginx reads and drops a request body,
    -- so the connection stays usable
    "    location = /api/v1/notes { return 200 '" .. note .. "'; }",
    "    location / { return 404 '{\"error\":\"not_found\",\"message\":\"no such fixture\"}'; }",
    "  }",
    "}",
  }
  return table.concat(lines, "\n") .. "\n"
end

local Server = {}
Server.__index = Server

--- Starts nginx on free loopback ports over the files of M.generate(dir). Returns the server
-- (fields url, https_url, ca_file, port, tls_port) or nil, err.
function M.start(dir, info)
  local sandbox = require "flextell.sandbox"
  local nginx, modules = sandbox.nginx()
  if not nginx then return nil, modules end
  assert(run("mkdir -p " .. quote(dir .. "/tmp") .. " " .. quote(dir .. "/tls")))
  local key, cert = dir .. "/tls/key.pem", dir .. "/tls/cert.pem"
  if not run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 " ..
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " .. quote(key) .. " -out " ..
      quote(cert) .. " >/dev/null 2>&1") then
    return nil, "openssl could not make a certificate"
  end
  local user_root = capture("id -u") == "0"
  local s = setmetatable({ dir = dir, pidfile = dir .. "/nginx.pid", ca_file = cert }, Server)
  util.watchdog(dir .. "/.watched", util.stop_nginx_script(s.pidfile) .. "; rm -rf " .. quote(dir))
  for _ = 1, 8 do
    s.port = sandbox.free_port()
    repeat s.tls_port = sandbox.free_port() until s.tls_port ~= s.port
    util.write_file(dir .. "/nginx.conf", conf(dir, s.port, s.tls_port, user_root, info.note))
    os.remove(dir .. "/error.log")
    if run(quote(nginx) .. " -p " .. quote(dir .. "/") .. " -c " .. quote(dir .. "/nginx.conf") ..
        " -e " .. quote(dir .. "/error.log") .. " >" .. quote(dir .. "/startup.log") .. " 2>&1") then
      s.url = string.format("http://127.0.0.1:%d/api", s.port)
      s.https_url = string.format("https://127.0.0.1:%d/api", s.tls_port)
      local probe = "curl -s -o /dev/null -w '%{http_code}' --max-time 1 " .. quote(s.url .. "/v1/customers/1")
      for _ = 1, 100 do
        if capture(probe) == "200" then return s end
        run("sleep 0.05")
      end
      s:stop()
      return nil, "nginx started but does not answer on " .. s.url
    end
    local said = (util.read_file(dir .. "/startup.log") or "") .. (util.read_file(dir .. "/error.log") or "")
    if not said:find("Address already in use", 1, true) then
      return nil, "nginx did not start: " .. said
    end
  end
  return nil, "no free port found"
end

--- Stops nginx (idempotent); the caller removes the directory.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  run("sh -c " .. quote(util.stop_nginx_script(self.pidfile)) .. " >/dev/null 2>&1")
  os.remove(self.dir .. "/.watched")
end

return M
