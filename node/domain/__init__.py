"""Pure domain code: policy arithmetic, rules and state machines. No I/O here."""
