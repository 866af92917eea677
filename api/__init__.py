"""The HTTP API (FastAPI). Never imports torch or core.engine: what it knows of models, workers publish."""
