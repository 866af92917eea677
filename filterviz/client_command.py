"""``filterviz submit|status|watch|download|cancel``: the HTTP API from a terminal, for whoever would use curl.

Every command takes ``--api URL`` (default ``$FILTERVIZ_API`` or http://127.0.0.1:8000) and sends
``$FILTERVIZ_API_KEY`` as a Bearer key when it is set. Problems (RFC 9457) are printed field by field;
a refused request exits 2, an unreachable API or a job that did not succeed exits 1.
"""

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from tqdm import tqdm

DEFAULT_API = "http://127.0.0.1:8000"
LAYER_FOLDER = re.compile(r"[A-Za-z0-9_.]+")  # layer names (block4_conv1, blocks.4) as download folders
FINISHED = ("succeeded", "failed", "canceled")
RECONNECTS = 5  # a dropped event stream is resumed (Last-Event-ID) this many times before watch gives up
TIMEOUT = httpx.Timeout(60.0, read=90.0)  # reads outlast the server's keep-alive comments (15 s)


class RequestRefused(Exception):
    """The API answered with a problem; the message is what to print."""


def add_client_commands(subparsers: argparse._SubParsersAction) -> None:
    submit = subparsers.add_parser("submit", help="submit a render job to a filterviz API; prints the job id")
    _add_api_option(submit)
    submit.add_argument("--body", help="the whole request as JSON (or @file.json); the options below override it")
    submit.add_argument("--model")
    submit.add_argument("--layer", action="append", help="a layer; several --layer: one job of several layers")
    submit.add_argument("--layers", help="'all-conv' (every conv layer of the model) or names, comma-separated")
    submit.add_argument("--filters", help="e.g. 3, 0-19, 0,5,9")
    submit.add_argument("--method", choices=("classic", "robust", "maco", "accentuate"))
    submit.add_argument("--transparency", action="store_true", help="robust, maco, accentuate: RGBA transparency maps")
    submit.add_argument("--objective", choices=("channel", "neuron", "layer", "class"))
    submit.add_argument("--diversity", type=int)
    submit.add_argument("--steps", type=int)
    submit.add_argument("--step-size", type=float)
    submit.add_argument("--snapshots", type=int)
    submit.add_argument("--size", type=_size, help="side in pixels, or HxW")
    submit.add_argument("--seed", type=int)
    submit.add_argument("--precision", choices=("fp32", "bf16"))
    submit.add_argument("--init-image", type=Path, help="a PNG or JPEG to start from (uploaded first)")
    submit.set_defaults(func=run_submit)
    for name, run, text in (
        ("status", run_status, "print a job as JSON"),
        ("watch", run_watch, "show a job's progress until it ends; exit 0 when it succeeded"),
        ("cancel", run_cancel, "cancel a queued or running job"),
        ("download", run_download, "write a job's PNGs and grid to --out"),
    ):
        command = subparsers.add_parser(name, help=text)
        _add_api_option(command)
        command.add_argument("job", help="the job id that submit printed")
        command.set_defaults(func=run)
    download = subparsers.choices["download"]
    download.add_argument("--out", type=Path, required=True, help="directory to write the pictures into")


def run_submit(args: argparse.Namespace) -> int:
    def submit(http: httpx.Client) -> int:
        body = _request_body(args)
        if args.init_image is not None:
            body["init"] = {"type": "image", "image_id": _upload(http, args.init_image)}
        job = _checked(http.post("/v1/jobs", json=body)).json()
        print(job["id"])
        return 0

    return _with_client(args, submit)


def run_status(args: argparse.Namespace) -> int:
    def status(http: httpx.Client) -> int:
        print(json.dumps(_checked(http.get(f"/v1/jobs/{args.job}")).json(), indent=2))
        return 0

    return _with_client(args, status)


def run_cancel(args: argparse.Namespace) -> int:
    def cancel(http: httpx.Client) -> int:
        job = _checked(http.post(f"/v1/jobs/{args.job}/cancel")).json()
        print(f"{job['id']}: {'canceled' if job['status'] == 'canceled' else 'asked to stop'}")
        return 0

    return _with_client(args, cancel)


def run_watch(args: argparse.Namespace) -> int:
    def watch(http: httpx.Client) -> int:
        with tqdm(desc="queued", unit="step", file=sys.stderr) as bar:
            job = _follow(http, args.job, bar)
        print(f"{job['id']}: {job['status']}" + (f" ({job['error']['message']})" if job.get("error") else ""))
        return 0 if job["status"] == "succeeded" else 1

    return _with_client(args, watch)


def run_download(args: argparse.Namespace) -> int:
    def download(http: httpx.Client) -> int:
        job = _checked(http.get(f"/v1/jobs/{args.job}")).json()
        if job["status"] != "succeeded":
            raise RequestRefused(f"job {args.job} has no pictures (status: {job['status']})")
        several = job["request"].get("layers") is not None  # a folder per layer; one layer: the pictures in --out

        def path(result: dict, name: str) -> str:
            if not several:
                return name
            if not LAYER_FOLDER.fullmatch(result["layer"]) or result["layer"].strip(".") == "":
                raise RequestRefused(f"the API named a layer {result['layer']!r}, which is no folder name")
            return f"{result['layer']}/{name}"

        files = {path(r, _picture_name(r, "png")): r["url"] for r in job["results"]}
        files |= {
            path(r, _picture_name(r, "webp")): r["animation_url"] for r in job["results"] if r.get("animation_url")
        }
        files |= {path(grid, "grid.png"): grid["url"] for grid in job["grids"]}
        for name, url in files.items():
            (args.out / name).parent.mkdir(parents=True, exist_ok=True)
            (args.out / name).write_bytes(_checked(http.get(url)).content)
        print(f"wrote {len(files)} files to {args.out}")
        return 0

    return _with_client(args, download)


def _follow(http: httpx.Client, job_id: str, bar: tqdm) -> dict:
    """The finished job, from its event stream, resumed after its last event when the connection drops."""
    last_id: str | None = None
    previews = 0  # a terminal shows no pictures: a job that asked for previews gets them counted
    for _ in range(RECONNECTS + 1):
        try:
            for event, event_id, data in _events(http, job_id, last_id):
                last_id = event_id or last_id
                if event == "done":
                    return data
                if event == "state":
                    bar.set_description(data["status"])
                elif event == "progress":
                    bar.total = data["steps"]
                    bar.n = data["step"]
                    bar.refresh()
                elif event == "preview":
                    previews += 1
                    bar.set_postfix_str(f"{previews} previews")
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout):
            continue
    raise RequestRefused(f"the event stream of job {job_id} kept breaking; try `filterviz status {job_id}`")


def _events(http: httpx.Client, job_id: str, last_id: str | None) -> Iterator[tuple[str, str | None, dict]]:
    """(event, id, data) of each server-sent event, until the server ends the stream."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    with http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        if response.is_error:
            response.read()
            _checked(response)
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif "event" in fields:
                yield fields["event"], fields.get("id"), json.loads(fields.get("data", "{}"))
                fields = {}
            else:
                fields = {}


def _request_body(args: argparse.Namespace) -> dict:
    body: dict = {}
    if args.body:
        text = Path(args.body[1:]).read_text() if args.body.startswith("@") else args.body
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            raise RequestRefused(f"--body is not JSON: {error}") from None
    options = ("model", "filters", "method", "objective", "diversity", "steps", "step_size", "snapshots")
    for name in (*options, "seed", "precision"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.size is not None:
        body["size"] = args.size
    layers = args.layer or []
    if args.layers is not None:
        layers += ["all-conv"] if args.layers == "all-conv" else args.layers.split(",")
    if len(layers) == 1 and args.layers is None:
        body["layer"] = layers[0]
    elif layers:
        body["layers"] = "all-conv" if layers == ["all-conv"] else [{"layer": name} for name in layers]
    if args.transparency:
        body["transparency"] = True
    return body


def _upload(http: httpx.Client, path: Path) -> str:
    media_type = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    response = http.post("/v1/images", content=path.read_bytes(), headers={"content-type": media_type})
    return _checked(response).json()["id"]


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        problem = response.json()
        lines = [f"{response.status_code} {problem.get('title', '')}: {problem.get('detail', '')}"]
        for error in problem.get("errors", []):
            lines.append(f"  {'.'.join(str(part) for part in error.get('loc', []))}: {error.get('msg', '')}")
        raise RequestRefused("\n".join(lines))
    raise RequestRefused(f"{response.status_code}: {response.text[:500]}")


def _with_client(args: argparse.Namespace, command: Callable[[httpx.Client], int]) -> int:
    key = os.environ.get("FILTERVIZ_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(base_url=args.api, headers=headers, timeout=TIMEOUT) as http:
            return command(http)
    except RequestRefused as refusal:
        print(f"filterviz: {refusal}", file=sys.stderr)
        return 2
    except httpx.HTTPError as error:
        print(f"filterviz: cannot reach {args.api}: {error}", file=sys.stderr)
        return 1


def _picture_name(result: dict, extension: str) -> str:
    variant = f"_v{result['variant']}" if result["variant"] else ""
    return f"filter_{result['filter']:04d}{variant}.{extension}"


def _add_api_option(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("FILTERVIZ_API", DEFAULT_API)
    parser.add_argument("--api", default=default, help=f"the API's base URL ({default}; key: $FILTERVIZ_API_KEY)")


def _size(text: str) -> int | list[int]:
    try:
        numbers = [int(part) for part in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use N or HxW, e.g. 128 or 96x128") from None
    if len(numbers) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use N or HxW")
    return numbers[0] if len(numbers) == 1 else numbers
