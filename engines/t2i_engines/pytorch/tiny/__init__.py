"""Tiny random models of the real architectures, for tests and the demo."""
