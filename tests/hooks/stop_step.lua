-- stop_step.lua: stops in the middle of the first epoch, without a reason.
function on_step(run)
  if run.step == 30 then aigc.stop() end
end
