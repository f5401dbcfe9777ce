"""Pure functions turning raw platform pages into rows; they never mutate their input and do no I/O."""
