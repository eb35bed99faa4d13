"""ASGI entry point for uvicorn/gunicorn workers: each worker compiles its own rule pack."""

from engine.api.app import create_app

app = create_app()
