"""Planning, executing and storing runs: one subprocess per run, one folder per run id."""
