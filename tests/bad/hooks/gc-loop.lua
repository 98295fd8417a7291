-- A __gc finalizer that never ends: Lua runs finalizers with hooks off, so no budget
-- could stop it; setmetatable refuses it.
setmetatable({}, {__gc = function() while true do end end})
