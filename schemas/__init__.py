"""Data models of cdsrules: the request/response contract, rule files and terminology.

These are pure pydantic v2 models with no behaviour, so every other layer (compiler, runtime,
HTTP adapters, CLI) can share one definition of each document it reads or writes.
"""
