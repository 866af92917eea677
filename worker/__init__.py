"""Celery workers: thin glue between the job store and core.engine (torch only in pool processes)."""
