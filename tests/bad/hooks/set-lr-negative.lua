-- aigc.set_lr with a negative learning rate.
function on_start(run)
  aigc.set_lr("opt", -1)
end
