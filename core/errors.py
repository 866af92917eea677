"""Every error filterviz raises on purpose, in one tree. Torch-free, shared by engine, API, workers and CLI.

    FilterVizError
    ├── RequestError            the request is at fault (the API answers 4xx); ``field`` names it
    │   ├── UnknownModel          model
    │   ├── UnknownLayer          layer
    │   ├── FilterOutOfRange      filters
    │   ├── SizeOutOfRange        size
    │   ├── InvalidImage          image
    │   ├── InvalidImageSet       files (an image set's upload: the message names the file)
    │   ├── InvalidCursor         cursor (a listing's)
    │   └── ForbiddenTarget       webhook
    └── ServerFault             the service is at fault (5xx, or a failed job); retrying may help
        ├── ModelUnavailable      a served model cannot be built: unknown architecture, builder options refused
        │   └── WeightsUnavailable  its weight file is missing, unreadable or not a state dict of its architecture
        ├── StorageError          a write was refused (full, read-only, no permission)
        ├── DamagedPicture        stored bytes are not what was stored
        ├── WorkerLost            the job's worker stopped, every attempt
        └── TimeLimitExceeded     the job ran past its time limit

Each message says what is valid or what went wrong; a failed job records the class name as its
error ``type`` (``JobError``), so clients see the same names.
"""


class FilterVizError(Exception):
    """Base class. ``field`` names the request field at fault, where there is one."""

    field: str | None = None


class RequestError(FilterVizError):
    """The request cannot be served as it is: change it."""


class UnknownModel(RequestError):
    field = "model"


class UnknownLayer(RequestError):
    field = "layer"


class FilterOutOfRange(RequestError):
    field = "filters"


class SizeOutOfRange(RequestError):
    field = "size"


class InvalidImage(RequestError):
    field = "image"


class InvalidImageSet(RequestError):
    """An image set's upload that cannot be kept whole: the message names the file (or archive member) at fault."""

    field = "files"


class InvalidCursor(RequestError):
    """A listing cursor this service never handed out."""

    field = "cursor"


class ForbiddenTarget(RequestError):
    """The URL may not receive webhooks; the message says why."""

    field = "webhook"


class ServerFault(FilterVizError):
    """Not the request's fault: the machine, its storage or its workers."""


class ModelUnavailable(ServerFault):
    """A model of the deployment's that cannot be served as configured; the message says why."""

    field = "model"


class WeightsUnavailable(ModelUnavailable):
    """The model's weight file is not on this machine, or not usable (unreadable, not of the model's
    architecture); the message says where it was looked for, or what is wrong with it."""


class StorageError(ServerFault):
    """Result or upload storage refused a write (full, read-only, no permission); the message says which."""


class DamagedPicture(ServerFault):
    """Stored bytes that are not what was stored (truncated, emptied, overwritten); the message says how."""


class WorkerLost(ServerFault):
    """The worker running the job stopped (killed, out of memory, its machine lost) on every attempt."""


class TimeLimitExceeded(ServerFault):
    """The job ran longer than the deployment's time limit."""


def list_valid(names: list[str], limit: int = 40) -> str:
    """'a, b, c' — or the first ``limit`` names and how many more, for very long lists."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names) - limit} more)"
