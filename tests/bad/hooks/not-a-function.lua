-- A callback name bound to a number.
on_step = 3
