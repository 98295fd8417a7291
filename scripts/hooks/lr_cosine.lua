-- lr_cosine.lua: a linear warmup, then cosine annealing of every optimizer's learning
-- rate down to ETA_MIN at the end of the last epoch, updated at every step (as
-- torch.optim.lr_scheduler.CosineAnnealingLR with T_max = the run's total steps).
--
--   hooks: scripts/hooks/lr_cosine.lua

local WARMUP_STEPS = 0   -- steps of linear warmup from 0 to each optimizer's lr
local ETA_MIN = 0        -- the learning rate at the end

local base = {}          -- each optimizer's lr from the spec

function on_start(run)
  for name, lr in pairs(run.lr) do base[name] = lr end
end

function on_step(run)
  local total = run.epochs * run.steps_per_epoch
  local t = run.step    -- steps done; this sets the lr of the next one
  for name, lr0 in pairs(base) do
    local lr
    if t < WARMUP_STEPS then
      lr = lr0 * (t + 1) / WARMUP_STEPS
    else
      local p = math.min(t - WARMUP_STEPS, total) / math.max(total - WARMUP_STEPS, 1)
      lr = ETA_MIN + (lr0 - ETA_MIN) * (1 + math.cos(math.pi * p)) / 2
    end
    aigc.set_lr(name, lr)
  end
end
