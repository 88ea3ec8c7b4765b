"""Flax Linen models: pure `init`/`apply`, explicit PRNG keys."""
