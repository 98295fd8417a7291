-- A misspelt callback name.
function on_stepp(run)
end
