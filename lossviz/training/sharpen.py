"""Training task of this family (being written)."""
