-- aigc.log with a name that is not one.
function on_start(run)
  aigc.log("my loss", 1)
end
