"""Transport-agnostic services: they decide, using the pure domain and the stores."""
