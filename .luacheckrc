std = "max"
max_line_length = 120
files["spec"] = { std = "+busted", max_line_length = 130 }
files["lua/flextell/sandbox"] = { globals = { "ngx" } }
files["lua/flextell/ngx"] = { read_globals = { "ngx" } }
files["lua/flextell/stores/shared_dict.lua"] = { read_globals = { "ngx" } }
files["examples/openresty"] = { globals = { "ngx" } }
exclude_files = { "build" }
