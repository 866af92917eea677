"""In-process API clients on a scratch Redis with a published catalog (no worker: jobs stay queued)."""

import hashlib
import io
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from core.catalog import LayerEntry, ModelEntry
from core.settings import Settings
from core.store import Stores

BLOCK = LayerEntry(
    name="blocks.2",
    aliases=["blocks.2.0"],
    module_path="blocks.2",
    type="Sequential",
    output_shape=(40, 28, 28),
    params=1000,
    filters=40,
    flops=227_497_984,
    activations=9_853_312,
)
CATALOG = ModelEntry(
    name="efficientnet_lite0",
    description="",
    default_size=224,
    weights_file="w.pth",
    weights_available=True,
    num_classes=1000,
    layers=[BLOCK],
)
ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"
KEY_DIGESTS = [hashlib.sha256(key.encode()).hexdigest() for key in (ALICE, BOB)]

AppClient = Callable[..., TestClient]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def app_client(scratch: tuple[Settings, Stores]) -> Iterator[AppClient]:
    """``app_client(**settings changes)``: a TestClient of an app on the scratch Redis, catalog published."""
    settings, stores = scratch
    stores.catalog.publish(CATALOG)
    clients: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update=changes)), raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
