-- fail_on_rank1.lua: fails at step 5 on MPI rank 1 alone (needs --unsafe-hooks for
-- os.getenv); the other ranks go on, and wait for it at the next gradient sum.
function on_step(run)
  if run.step == 5 and os.getenv("OMPI_COMM_WORLD_RANK") == "1" then
    error("rank 1 gives up")
  end
end
