-- stop.lua: stops after the first epoch, with a reason.
function on_epoch_end(run)
  if run.epoch == 1 then aigc.stop("plateau: test loss " .. run.test.loss) end
end

function on_end(run)
  aigc.print("on_end after epoch", run.epoch)
end
