-- A misspelt field of run.
function on_start(run)
  print(run.epoch_count)
end
