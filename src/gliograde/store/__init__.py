"""The slice store: written by ``prepare``, read by training as a ``Dataset``, with its splits."""
