"""One module per on-disk layout; each turns a dataset folder into the common table."""
