-- log_csv.lua: one CSV row per epoch in RUN_DIR/hooks.csv: the epoch, the step, the
-- seconds, the train and test means of every logged scalar, and every learning rate.
-- Writing a file needs the io library:
--
--   aigc-run specs/gan.yaml --unsafe-hooks     (with hooks: scripts/hooks/log_csv.lua)

local file                 -- the open CSV file
local columns              -- the header, fixed at the first epoch

local function row(run)
  local cells = {run.epoch, run.step, string.format("%.3f", run.seconds)}
  for _, c in ipairs(columns) do
    local set, name = c:match("^(%a+)_(.*)$")
    local v = set == "train" and run.loss[name] or set == "test" and run.test[name] or run.lr[name]
    cells[#cells + 1] = v and string.format("%.9g", v) or ""
  end
  return table.concat(cells, ",")
end

function on_start(run)
  if not io then
    error("log_csv.lua writes a file: run with --unsafe-hooks")
  end
  local path = run.dir .. "/hooks.csv"
  file = assert(io.open(path, "w"))
  print("log_csv: writing " .. path)
end

function on_epoch_end(run)
  if not columns then
    columns = {}
    for name in pairs(run.loss) do columns[#columns + 1] = "train_" .. name end
    for name in pairs(run.test) do columns[#columns + 1] = "test_" .. name end
    for name in pairs(run.lr) do columns[#columns + 1] = "lr_" .. name end
    file:write("epoch,step,seconds,", table.concat(columns, ","), "\n")
  end
  file:write(row(run), "\n")
  file:flush()   -- a row survives a crash later in the run
end

function on_end(run)
  if file then file:close() end
end
