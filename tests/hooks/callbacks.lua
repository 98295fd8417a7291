-- callbacks.lua: one line per callback, on_step only every 25 steps; each line shows
-- what the run object holds at that point (tests/cli/hooks.t reads them from stderr).
function on_start(run)
  aigc.print("on_start", run.name, run.epoch, run.epochs, run.step)
end

function on_step(run)
  if run.step % 25 == 0 then
    aigc.print("on_step", run.epoch, run.step, run.loss.loss > 0)
  end
end

function on_eval(run)
  aigc.print("on_eval", run.epoch, run.test.loss > 0)
end

function on_epoch_end(run)
  aigc.print("on_epoch_end", run.epoch, run.step, run.lr.opt)
end

function on_end(run)
  print("on_end", run.epoch, run.step)
end
