-- lr_step.lua: multiply every optimizer's learning rate by GAMMA every STEP_SIZE
-- epochs, like torch.optim.lr_scheduler.StepLR stepped once per epoch.
--
--   hooks: scripts/hooks/lr_step.lua      (in the spec; copy the file to change it)

local STEP_SIZE = 10   -- epochs between decays
local GAMMA = 0.5      -- the factor at each decay

function on_epoch_end(run)
  if run.epoch % STEP_SIZE == 0 then
    for name, lr in pairs(run.lr) do
      aigc.set_lr(name, lr * GAMMA)   -- from the next step on
    end
    print(string.format("lr_step: epoch %d, learning rates x%g", run.epoch, GAMMA))
  end
end
