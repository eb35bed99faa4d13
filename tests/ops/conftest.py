"""Ops tests: the shared app fixtures (``served_state``, ``make_client``) live in tests/conftest.py."""
