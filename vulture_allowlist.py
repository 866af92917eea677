# the worker side: names read only by frameworks (pydantic), clients or vars()
from core.job_view import Job, PictureLink
from core.jobs import JobRecord
from core.store.picture_cache import _Entry
from worker.cleanup import Cleanup

_ = (
    PictureLink.animation_url,  # a field of the JSON clients read
    Job.grids,
    JobRecord.heartbeat_at,  # a field of the record, read from Redis
    _Entry._refs,  # a pydantic validator
    Cleanup.cache_entries,  # logged with the rest of vars(Cleanup)
    Cleanup.freed_bytes,
)

# the API and CLI side: names read only by frameworks (uvicorn, FastAPI's decorators, pydantic)
from fastapi import FastAPI  # noqa: E402

from api.app import create_app  # noqa: E402  uvicorn --factory api.app:create_app
from api.routes import health, images, jobs, models  # noqa: E402
from api.schemas import ModelSummary  # noqa: E402
from api.slow_clients import HeaderTimeoutProtocol  # noqa: E402  uvicorn --http api.slow_clients:…
from core.settings import Settings  # noqa: E402
from core.spec import RenderSpec  # noqa: E402

_ = (
    create_app,
    HeaderTimeoutProtocol,
    health.healthz,  # routes, registered by their decorators
    health.readyz,
    images.upload_image,
    jobs.submit_job,
    jobs.list_jobs,
    jobs.get_job,
    jobs.delete_job,
    jobs.cancel_job,
    jobs.get_filter_png,
    jobs.get_filter_animation,
    jobs.get_grid_png,
    jobs.get_layer_filter_png,
    jobs.get_layer_filter_animation,
    jobs.get_layer_grid_png,
    models.model_layers,
    ModelSummary.layers_url,  # a field of the JSON clients read
    RenderSpec.model_config,  # pydantic's configuration, and its validators
    RenderSpec._read_filters,
    RenderSpec._normalize_filters,
    RenderSpec._read_size,
    RenderSpec._read_layers,
    RenderSpec._positive_size,
    RenderSpec._complete,
    Settings._known_models,
    Settings._readable_secret,
    Settings._storage_complete,
)
_ = FastAPI.openapi  # replaced by api.problems' document with problem+json errors

# the engine side: names read only by torch (nn.Module.__call__, autograd, torchvision, torch.backends)
from torch.backends import cudnn  # noqa: E402
from torchvision.models import GoogLeNet  # noqa: E402

from core.engine.fusion import FusingSequential, _ConvActivation  # noqa: E402
from core.engine.models import PixelNormalize  # noqa: E402
from core.engine.parameterizations import FourierImage  # noqa: E402

_ = (
    _ConvActivation.forward,  # a torch.autograd.Function, run by .apply
    FusingSequential.forward,  # modules, run by nn.Module.__call__
    PixelNormalize.forward,
    FourierImage.forward,
    GoogLeNet.aux1,  # its training-only heads, set to None for its forward
    GoogLeNet.aux2,
    cudnn.benchmark,  # flags read by cuDNN and cuBLAS
    cudnn.allow_tf32,
)

# read by the tests and benchmarks (tests/ is not scanned: a test-only name would hide dead code elsewhere)
from core.store.jobs import JobStore  # noqa: E402
from core.store.render_stats import RenderStatsSnapshot  # noqa: E402

_ = (
    JobStore.create,  # a job with no caller and no bounds: the tests' way to queue one
    RenderStatsSnapshot.pictures_cached,
    RenderStatsSnapshot.pictures_rendered,
    RenderStatsSnapshot.average_batch_jobs,
    RenderStatsSnapshot.average_queue_seconds,
)

# stable picture URLs: a route, registered by its decorator
from api.routes import pictures  # noqa: E402

_ = (pictures.get_picture,)

# the metrics: collectors prometheus_client calls, and its value class it reads when a metric is made
from prometheus_client import values  # noqa: E402

from api.metrics import ServiceState  # noqa: E402
from worker.metrics import _DeadProcesses  # noqa: E402

_ = (
    ServiceState.collect,
    _DeadProcesses.collect,
    values.ValueClass,
)

# a deployment's own models: pydantic validators, the command the CLI finds by name, the tests' planted files
from core.model_config import ModelConfig  # noqa: E402
from filterviz.models_command import add_models_commands  # noqa: E402
from testkit.planted_weights import BAD_MODELS, GOOD_MODELS, plant_models_file  # noqa: E402

_ = (ModelConfig._preset, ModelConfig._options_load_nothing, add_models_commands, plant_models_file)
_ = (GOOD_MODELS, BAD_MODELS)

# filterviz.cli imports each command's module by name ("module:function"), only when that command runs
from filterviz.client_command import add_client_commands  # noqa: E402
from filterviz.layers_command import add_layers_command  # noqa: E402
from filterviz.render_command import add_render_command  # noqa: E402
from filterviz.service import add_service_commands  # noqa: E402

_ = (add_client_commands, add_layers_command, add_render_command, add_service_commands)

# image sets and dataset examples: routes and the task FastAPI and Celery call, fields read as JSON
from api.routes import datasets as dataset_routes  # noqa: E402
from api.routes import examples as example_routes  # noqa: E402
from core.example_index import ExampleIndex  # noqa: E402
from core.store.example_indexes import BuildState  # noqa: E402
from filterviz.examples_command import add_examples_command  # noqa: E402

_ = (dataset_routes.upload_dataset, dataset_routes.list_datasets, dataset_routes.get_dataset)
_ = (dataset_routes.delete_dataset, dataset_routes.get_dataset_image)
_ = (dataset_routes.DatasetView.builtin, dataset_routes.DatasetDetail.image_names)
_ = (example_routes.get_examples, example_routes.get_build, example_routes.get_example_picture)
_ = (example_routes.ExampleEntry.image_url, example_routes.ExampleEntry.crop_url)
_ = (example_routes.ExampleEntry.thumbnail_url, example_routes.LayerExamples.ranking)
_ = (example_routes.ExamplesBuild.examples_url, ExampleIndex.forward_passes, BuildState.updated_at)
_ = (add_examples_command,)
