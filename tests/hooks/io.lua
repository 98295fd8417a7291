-- io.lua: writes a file with the io library (only with --unsafe-hooks).
function on_start(run)
  local f = io.open(run.dir .. "/io.txt", "w")
  f:write("written by ", run.name, "\n")
  f:close()
end
