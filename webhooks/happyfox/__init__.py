"""The happyfox receiver: verify, parse, dedupe key."""
