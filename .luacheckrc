std = "max"
max_line_length = 120
files["spec"] = { std = "+busted", max_line_length = 130 }
files["lua/flextell/sandbox"] = { globals = { "ngx" } }
exclude_files = { "build" }
