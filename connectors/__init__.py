"""Typed clients for the outside systems. They know nothing of flows or of our database: they take settings,
speak the vendor's API through the shared policy in `http.py`, and raise the errors in `errors.py`."""
