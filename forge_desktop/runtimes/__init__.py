"""Runtime adapters: one protocol, one module per backend, a registry that names them."""
