-- budget.lua: a runaway loop in on_step.
function on_step(run)
  local n = 0
  while true do n = n + 1 end
end
