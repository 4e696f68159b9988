"""rungroup."""
