"""Synchronous detection (SPEC §8): ``POST /v1/detect`` on a worker, and the service behind it.

:func:`detect` answers a request body with an HTTP status and a JSON document; the REST view
and ``assetwatch detect`` both use it, so they give the same answers:

======  =====================================================================================
200     ``schemas/detect-result.v1.json``: the anomalies found, and what happened to the points
400     a malformed request: ``{"error": …}`` naming the field at fault
404     no such model (or model version) in the worker's model store
409     the model exists but cannot be used (not Completed, damaged artifact)
413     over 30,000 data points (timestamps × signals), or a body over 8 MiB: use a job
======  =====================================================================================

Scoring is :class:`streams.batch.BatchScorer`: the stream's own scoring path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.web import Request, Response, View

import schemas
from agents.model_store import ModelStore, ModelStoreError
from streams.batch import DEFAULT_MAX_FILL_POINTS, SYNC_POINT_LIMIT, BatchScorer
from streams.batch_input import RequestError, parse_detect_request
from streams.codec import JSONDecodeError, loads
from streams.model import Model

#: The largest request body read (30,000 points with ISO timestamps fit in well under 4 MiB).
MAX_BODY_BYTES = 8 * 1024 * 1024
DETECT_PATH = "/v1/detect"


def load_model(store: ModelStore, model_id: str, version: int | None) -> Model:
    """The model to score with; a :class:`RequestError` 404 when there is none, 409 when it
    cannot be used."""
    known = store.versions(model_id)
    if not known:
        raise RequestError(404, f"no model {model_id!r} in the model store")
    if version is not None and version not in known:
        raise RequestError(404, f"model {model_id!r} has no version {version} "
                                f"(versions: {', '.join(map(str, known))})")
    try:
        return store.load(model_id, version)
    except ModelStoreError as exc:
        raise RequestError(409, str(exc)) from None


def too_large() -> tuple[int, dict[str, Any]]:
    return 413, {"error": f"the request body is over the synchronous limit of {MAX_BODY_BYTES:,} "
                          f"bytes ({SYNC_POINT_LIMIT:,} data points); submit larger data as an "
                          "asynchronous job (assetwatch job create, POST /v1/jobs)"}


def detect(store: ModelStore, body: bytes, limit: int = SYNC_POINT_LIMIT) -> tuple[int, dict[str, Any]]:
    """Score a request body; the HTTP status and the JSON answer."""
    if len(body) > MAX_BODY_BYTES:
        return too_large()
    try:
        doc = loads(body)
    except JSONDecodeError as exc:
        return 400, {"error": f"the request body is not JSON: {exc}"}
    try:
        req = parse_detect_request(doc, schemas.validator("detect-request.v1"), limit)
        model = load_model(store, req.model, req.model_version)
        readings = req.readings(model.signals)
        fill = DEFAULT_MAX_FILL_POINTS if req.max_fill_points is None else req.max_fill_points
        scorer = BatchScorer(model, req.sensitivity, fill)
        found = scorer.feed(readings) + scorer.finish()
    except RequestError as exc:
        return exc.status, {"error": exc.message}
    return 200, scorer.result(found)


async def read_body(request: Request, limit: int) -> bytes | int:
    """The request body, or its size so far once it passes ``limit`` (read no further)."""
    content = getattr(request, "content", None)
    if content is None:  # not aiohttp: the driver's own read
        return await request.read()
    parts: list[bytes] = []
    size = 0
    while True:
        part = await content.read(65_536)
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > limit:
            return size
        parts.append(part)


def register_detect_api(app: faust.App, store: ModelStore) -> None:
    """``POST /v1/detect`` on the worker's web server."""

    @app.page(DETECT_PATH, name="assetwatch_detect")
    class Detect(View):
        async def post(self, request: Request) -> Response:
            body = await read_body(request, MAX_BODY_BYTES)
            if isinstance(body, int):
                status, answer = too_large()
            else:
                # scoring 30,000 points takes a fraction of a second: off the event loop
                status, answer = await asyncio.get_running_loop().run_in_executor(
                    None, detect, store, body)
            return self.json(answer, status=status)
