-- error_step.lua: an error in on_step at step 30, a step that writes a metrics row.
function on_step(run)
  if run.step == 30 then
    error("step 30")
  end
end
