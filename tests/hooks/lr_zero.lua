-- lr_zero.lua: learning rate 0 from the first step on.
function on_start(run)
  aigc.set_lr("opt", 0)
end
