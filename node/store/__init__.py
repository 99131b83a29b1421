"""All SQL lives here, behind named transaction functions run through ``Database``."""
