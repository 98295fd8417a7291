-- early_stop.lua: stop when a loss has not improved for PATIENCE epochs. It watches
-- the test split's mean of MONITOR (the train mean when the data has no test split),
-- and asks for a checkpoint at each new best.
--
--   hooks: scripts/hooks/early_stop.lua

local MONITOR = nil      -- a name from the spec's train.log; nil: the first of them
local PATIENCE = 3       -- epochs without improvement before stopping
local MIN_DELTA = 1e-4   -- an improvement smaller than this does not count

local best, best_epoch = math.huge, 0

local function logged(run)
  local names = {}
  for name in pairs(run.loss) do names[#names + 1] = name end
  return names
end

function on_epoch_end(run)
  local name = MONITOR or logged(run)[1]
  if name == nil then error("early_stop.lua: the spec's train.log names nothing to watch") end
  local value = run.test[name] or run.loss[name]
  if value == nil then
    error(string.format("early_stop.lua: MONITOR is '%s', but the spec logs: %s", name,
                        table.concat(logged(run), ", ")))
  end
  if value < best - MIN_DELTA then
    best, best_epoch = value, run.epoch
    aigc.save_checkpoint()
  elseif run.epoch - best_epoch >= PATIENCE then
    aigc.stop(string.format("early stop: %s has not improved on %.6g (epoch %d) for %d epochs",
                            name, best, best_epoch, PATIENCE))
  end
  aigc.log("best_" .. name, best)
end
