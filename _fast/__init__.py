"""Compiled speed-ups, installed as `ctid._fast` (see setup.py).

Every module here has a pure-Python twin that is used when the extension was
not built (no C compiler): importers try `ctid._fast.<name>` and fall back.
"""
