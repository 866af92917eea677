"""A job: a request as the service runs it, with its record, state and results. Torch-free.

The record's single source of truth is the job store (core.store.jobs); this module holds only the
types every process shares. A job's results are its pictures (core.pictures), one per filter variant.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.pictures import Picture
from core.spec import RenderSpec

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
ClaimOutcome = Literal["claimed", "busy", "finished", "missing", "canceled", "exhausted"]
BeatState = Literal["ok", "cancel", "lost"]
CancelOutcome = Literal["canceled", "requested", "finished", "missing"]
AdmissionOutcome = Literal["created", "replayed", "conflict", "queue_full", "caller_busy"]

JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class JobError(BaseModel):
    type: str = Field(description="error class, e.g. UnknownLayer, WeightsUnavailable, WorkerLost")
    message: str
    field: str | None = Field(default=None, description="request field at fault, where there is one")


class JobRecord(BaseModel):
    id: str
    status: JobStatus
    request: RenderSpec
    caller: str | None = None  # the id of the API key that submitted it, when keys are configured
    webhook: str | None = None
    step: int = 0
    steps: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    attempts: int = 0
    cancel_requested: bool = False
    solo: bool = False  # handed back by a failed batch: runs alone, in no batch
    worker: str | None = None
    owner: str | None = None
    results: list[Picture] = []  # without their bytes: those are in result storage
    error: JobError | None = None
    device: str | None = None
    seconds: dict[str, float] = {}

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class Admission:
    """What a create did: ``created`` or ``replayed`` (``job`` is set), or why nothing was created."""

    outcome: AdmissionOutcome
    job: JobRecord | None = None
    conflicting_id: str | None = None  # for ``conflict``: the job the Idempotency-Key was used for


@dataclass(frozen=True)
class Limits:
    """Bounds a create checks atomically; None: unbounded."""

    max_queued: int | None = None
    max_active_per_caller: int | None = None


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    token: str | None = None  # set when outcome == "claimed"
