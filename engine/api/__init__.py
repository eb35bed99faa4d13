"""HTTP adapters: thin FastAPI routes over the engine."""
