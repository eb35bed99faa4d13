"""Ops tests share the session's started app (see tests/apps.py)."""

from tests import apps

served_state = apps.served_state
make_client = apps.make_client
