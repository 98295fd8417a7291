-- A __gc finalizer set in a callback: refused there, and the run ends saved.
function on_epoch_end(run)
  setmetatable({}, {__gc = function() while true do end end})
end
