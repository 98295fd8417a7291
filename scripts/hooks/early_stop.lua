-- early_stop.lua: stop when a loss has not improved for PATIENCE epochs. It watches
-- the test split's mean of MONITOR (the train mean when the data has no test split),
-- and asks for a checkpoint at each new best.
--
--   hooks: scripts/hooks/early_stop.lua

local MONITOR = "loss"   -- a name from the spec's train.log
local PATIENCE = 3       -- epochs without improvement before stopping
local MIN_DELTA = 1e-4   -- an improvement smaller than this does not count

local best, best_epoch = math.huge, 0

function on_epoch_end(run)
  local value = run.test[MONITOR] or run.loss[MONITOR]
  if value == nil then
    local names = {}
    for name in pairs(run.loss) do names[#names + 1] = name end
    error(string.format("early_stop.lua: MONITOR is '%s', but the spec logs: %s", MONITOR,
                        table.concat(names, ", ")))
  end
  if value < best - MIN_DELTA then
    best, best_epoch = value, run.epoch
    aigc.save_checkpoint()
  elseif run.epoch - best_epoch >= PATIENCE then
    aigc.stop(string.format("early stop: %s has not improved on %.6g (epoch %d) for %d epochs",
                            MONITOR, best, best_epoch, PATIENCE))
  end
  aigc.log("best_" .. MONITOR, best)
end
