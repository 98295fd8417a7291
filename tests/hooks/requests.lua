-- requests.lua: at step 10, three sample grids (16 images to hook-16.png, the section's
-- own count where the loop chooses, and 100, more than the section draws at once, to
-- hook-100.png) and a checkpoint. It reads last.state
-- (so it needs --unsafe-hooks) at steps 1 and 11 to show when the checkpoint came.
local function last_state(run)
  local f = io.open(run.dir .. "/last.state", "rb")
  if not f then
    aigc.print("step " .. run.step .. ": no last.state")
    return
  end
  local bytes = f:read("a")
  f:close()
  -- the state's step, its first record: an i64 at byte 41 (1-based), see include/aigc/ckpt.h
  aigc.print("step " .. run.step .. ": last.state saved at step " .. string.unpack("<i8", bytes, 41))
end

function on_step(run)
  if run.step == 1 or run.step == 11 then last_state(run) end
  if run.step == 10 then
    aigc.sample{n = 16, path = "hook-16.png"}
    aigc.sample{}
    aigc.sample{n = 100, path = "hook-100.png"}
    aigc.save_checkpoint()
  end
end
