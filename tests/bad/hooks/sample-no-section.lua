-- aigc.sample, but the spec has no sample section.
function on_start(run)
  aigc.sample{}
end
