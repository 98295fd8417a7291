-- The cheapest hook a script can define: an empty on_step. scripts/bench/hooks.sh
-- times a GAN epoch with and without it to measure what calling Lua per step costs.
function on_step(run) end
