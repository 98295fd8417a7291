-- A runtime error in on_start: the run stops before its first step.
function on_start(run)
  error("no config")
end
