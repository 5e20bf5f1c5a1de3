"""The aircall receiver: verify, parse, dedupe key."""
