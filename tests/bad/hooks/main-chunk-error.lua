-- An error in the main chunk, at load time.
local cfg = nil
print(cfg.lr)
