"""Every module that registers jobs is imported here, so that a worker and a clock know all of them."""
