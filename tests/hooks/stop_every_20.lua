-- stop_every_20.lua: stops after step 20, 40, ...: short runs, and a resume that goes
-- 20 steps further.
function on_step(run)
  if run.step % 20 == 0 then aigc.stop() end
end
