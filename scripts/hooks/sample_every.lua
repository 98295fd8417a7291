-- sample_every.lua: an extra, larger grid of the spec's sample: section every EVERY
-- epochs, written into the run directory as extra-epoch-NNN.png.
--
--   hooks: scripts/hooks/sample_every.lua

local EVERY = 5   -- epochs between grids
local N = 100     -- images in each grid

function on_epoch_end(run)
  if run.epoch % EVERY == 0 or run.epoch == run.epochs then
    aigc.sample{n = N, path = string.format("extra-epoch-%03d.png", run.epoch)}
  end
end
