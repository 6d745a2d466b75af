"""Fixtures for the hotline package's tests (the spare Asterisk is tests/conftest.py's)."""
