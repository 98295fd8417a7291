-- A syntax error on line 3.
function on_step(run)
  local x = = 1
end
