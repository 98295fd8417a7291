-- run is read-only.
function on_start(run)
  run.epochs = 3
end
