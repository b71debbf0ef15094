"""Fast unit tests of the pure modules, one file per module; no server, real objects."""
