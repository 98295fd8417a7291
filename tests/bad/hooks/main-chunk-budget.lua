-- A main chunk that never ends: stopped by the instruction budget.
while true do end
