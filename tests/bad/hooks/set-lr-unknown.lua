-- aigc.set_lr with an optimizer the spec does not have.
function on_start(run)
  aigc.set_lr("opt_G", 0.1)
end
