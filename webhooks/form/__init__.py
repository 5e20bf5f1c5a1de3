"""The form receiver: verify, parse, dedupe key."""
