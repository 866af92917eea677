"""Names shared by the API (which sends tasks) and the workers (which run them).

Plain strings, no Celery import: the API and the workers each build their own Celery app.
"""

RENDER_TASK = "filterviz.render"
DESCRIBE_TASK = "filterviz.describe_layers"
EXAMPLES_TASK = "filterviz.examples"  # build an examples index (sent to the render queue: it needs the model)

RENDER_QUEUE = "filterviz.render"
META_QUEUE = "filterviz.meta"  # small, quick tasks (layer catalogs at other sizes)
