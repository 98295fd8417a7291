-- log.lua: extra scalars in the metrics rows: one on every step, one per epoch.
function on_step(run)
  aigc.log("step_x10", run.step * 10)
end

function on_epoch_end(run)
  aigc.log("epoch_sq", run.epoch * run.epoch)
end
