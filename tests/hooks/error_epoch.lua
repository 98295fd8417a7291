-- error_epoch.lua: a runtime error in on_epoch_end, one call deep.
local function helper(t)
  return t.missing.field
end

function on_epoch_end(run)
  local v = helper({})
  return v
end
