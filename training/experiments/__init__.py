"""Research experiments, each a module with a ``register(app)`` function adding its `zoo experiment` command."""
