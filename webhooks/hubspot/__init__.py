"""The hubspot receiver: verify, parse, dedupe key."""
