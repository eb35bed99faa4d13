"""Tools for rule authors: run the examples that live beside the rules."""
