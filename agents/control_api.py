"""The control plane's REST API on every worker's web port (SPEC §5.4; docs/control.md).

=========================================  ==============================================
``GET  /assetwatch/inferences/``           every inference's state
``POST /assetwatch/inferences/``           create: ``{"name": …, "model_id": …, "topic": …}``
``GET  /assetwatch/inferences/{name}/``    state, progress over all workers, recent events
``POST /assetwatch/inferences/{name}/{action}/``  ``pause``, ``restart``, ``delete``,
                                           ``update-model`` (body ``{"model_id": …}``),
                                           ``replay`` (body ``{"start_ms": …, "end_ms": …}``,
                                           optionally ``"assets": [...]``)
=========================================  ==============================================

A command answers 200 with its result when accepted, 409 when rejected (the reason in the
body), 504 when no controller answered in time; a malformed body answers 400.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
from faust.web import Request, Response, View

from agents.connection import KafkaConnection
from agents.control_client import ControlClient, ControlTimeoutError, aggregate
from agents.settings import Settings
from agents.topic_view import TopicView
from streams.control import CommandType, InferenceState

ACTIONS: dict[str, CommandType] = {"pause": "pause", "restart": "restart", "delete": "delete",
                                   "update-model": "update_model", "replay": "replay"}


def register_control_api(app: faust.App, settings: Settings, kafka: KafkaConnection,
                         view: TopicView[InferenceState]) -> None:
    client = ControlClient(kafka, settings, issued_by="rest")

    async def run(type_: CommandType, name: str, params: dict[str, Any], web: View) -> Response:
        cmd = client.command(type_, name, params)
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, client.send, cmd, 30.0)
        except ControlTimeoutError as exc:
            return web.json({"error": str(exc)}, status=504)
        return web.json(result, status=200 if result["accepted"] else 409)

    async def body(request: Request) -> dict[str, Any] | None:
        try:
            data = await request.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @app.page("/assetwatch/inferences/")
    class Inferences(View):
        async def get(self, request: Request) -> Response:
            return self.json([s.to_record() for s in view.items().values()])

        async def post(self, request: Request) -> Response:
            data = await body(request)
            if data is None or not isinstance(data.get("name"), str):
                return self.json({"error": "expected a JSON object with a name"}, status=400)
            name = data.pop("name")
            return await run("create", name, data, self)

    @app.page("/assetwatch/inferences/{name}/")
    class Inference(View):
        async def get(self, request: Request, name: str) -> Response:
            state = view.get(name)
            if state is None:
                return self.json({"error": f"no inference named {name!r}"}, status=404)
            loop = asyncio.get_running_loop()
            stats = await loop.run_in_executor(None, client.stats)
            events = await loop.run_in_executor(None, client.events, name)
            return self.json({"state": state.to_record(),
                              "progress": aggregate(state, stats, time.time_ns() // 1_000_000),
                              "events": events[-20:]})

    @app.page("/assetwatch/inferences/{name}/{action}/")
    class InferenceAction(View):
        async def post(self, request: Request, name: str, action: str) -> Response:
            type_ = ACTIONS.get(action)
            if type_ is None:
                return self.json({"error": f"unknown action {action!r}; one of "
                                           f"{', '.join(ACTIONS)}"}, status=404)
            params = (await body(request) or {}) if type_ in ("update_model", "replay") else {}
            return await run(type_, name, params, self)
