-- io is not there without --unsafe-hooks.
local f = io.open("/etc/passwd")
