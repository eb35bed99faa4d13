"""Runtime: evaluate one patient against a compiled pack, statelessly."""
