-- aigc.log called from the main chunk, not a callback.
aigc.log("x", 1)
