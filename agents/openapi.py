"""The OpenAPI 3.1 description of a worker's REST surface, served at ``GET /v1/openapi.json``.

Request and response bodies refer to the record schemas in ``schemas/`` (embedded under
``components.schemas``), so the description and the validation at the edge cannot drift;
``tests/integration/test_detect_api.py`` checks that the description is valid OpenAPI,
that it names exactly the routes a worker serves, and that live answers match it.

>>> doc = openapi_document()
>>> doc["openapi"], "/v1/detect" in doc["paths"]
('3.1.0', True)
>>> doc["components"]["schemas"]["detect-result.v1"]["properties"]["counts"]["$ref"]
'#/components/schemas/detect-result.v1/$defs/counts'
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

import schemas

OPENAPI_PATH = "/v1/openapi.json"
#: the record schemas the REST surface uses
EMBEDDED = ("detect-request.v1", "detect-result.v1", "job-status.v1")


def _ref(name: str, definition: str | None = None) -> dict[str, str]:
    where = f"#/components/schemas/{name}"
    return {"$ref": where if definition is None else f"{where}/$defs/{definition}"}


def _embedded(name: str) -> dict[str, Any]:
    """A schema of ``schemas/`` as a component: its internal references made absolute."""
    schema = schemas.load(name)
    schema.pop("$id", None)
    schema.pop("$schema", None)
    schema.pop("examples", None)
    base = f"#/components/schemas/{name}"

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (base + v[1:] if k == "$ref" and isinstance(v, str) and v.startswith("#")
                        else fix(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    fixed: dict[str, Any] = fix(schema)
    return fixed


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


_ANY_OBJECT: dict[str, Any] = {"type": "object"}
_JOB = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The inference's name."}


def openapi_document() -> dict[str, Any]:
    """The whole description, as a JSON-able dict."""
    paths: dict[str, Any] = {
        "/healthz": {"get": {
            "summary": "Liveness: 200 while the worker runs, 503 once it crashed or is stopping.",
            "responses": {"200": _json({"$ref": "#/components/schemas/Health"}, "running"),
                          "503": _json({"$ref": "#/components/schemas/Health"}, "crashed or stopping")}}},
        "/readyz": {"get": {
            "summary": "Readiness: 200 once partitions are held and tables recovered.",
            "responses": {"200": _json({"$ref": "#/components/schemas/Health"}, "ready"),
                          "503": _json({"$ref": "#/components/schemas/Health"}, "not ready, and why")}}},
        "/metrics": {"get": {
            "summary": "Prometheus metrics (docs/metrics.md).",
            "responses": {"200": {"description": "Prometheus text exposition format",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/assetwatch/status/": {"get": {
            "summary": "This worker: readiness, partitions, counters, active inferences.",
            "responses": {"200": _json(_ANY_OBJECT, "the worker's status")}}},
        "/assetwatch/hooks/": {"get": {
            "summary": "This worker's hook deliveries: outbox outcomes, in flight, retry policy.",
            "responses": {"200": _json(_ANY_OBJECT, "hook delivery status")}}},
        "/assetwatch/inferences/": {
            "get": {"summary": "Every inference's state (docs/control.md).",
                    "responses": {"200": _json({"type": "array", "items": _ANY_OBJECT},
                                               "inference states")}},
            "post": {"summary": "Create (schedule) an inference.",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["name"],
                         "properties": {"name": {"type": "string"}}}}}},
                     "responses": {"200": _json(_ANY_OBJECT, "accepted: the command's result"),
                                   "400": _error("not a JSON object with a name"),
                                   "409": _json(_ANY_OBJECT, "rejected, with the reason"),
                                   "504": _error("no controller answered in time")}}},
        "/assetwatch/inferences/{name}/": {"get": {
            "summary": "One inference: state, progress over all workers, recent events.",
            "parameters": [_NAME],
            "responses": {"200": _json(_ANY_OBJECT, "the inference"),
                          "404": _error("no such inference")}}},
        "/assetwatch/inferences/{name}/{action}/": {"post": {
            "summary": "pause, restart, delete, update-model (body {\"model_id\": …}) or "
                       "replay (body {\"start_ms\": …, \"end_ms\": …, optionally \"assets\": "
                       "[…]}; progress on the events topic).",
            "parameters": [_NAME, {"name": "action", "in": "path", "required": True, "schema": {
                "type": "string",
                "enum": ["pause", "restart", "delete", "update-model", "replay"]}}],
            "responses": {"200": _json(_ANY_OBJECT, "accepted: the command's result"),
                          "404": _error("unknown action"),
                          "409": _json(_ANY_OBJECT, "rejected, with the reason"),
                          "504": _error("no controller answered in time")}}},
        "/v1/detect": {"post": {
            "summary": "Score a table of at most 30,000 data points (timestamps × signals) at once.",
            "description": "The stream's scoring path (slots, fill, window, detector, calibration) "
                           "over the table, on event time (docs/batch.md).",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("detect-request.v1")}}},
            "responses": {"200": _json(_ref("detect-result.v1"), "the anomalies found"),
                          "400": _error("malformed: the field at fault is named"),
                          "404": _error("no such model or model version"),
                          "409": _error("the model cannot be used (not Completed, damaged)"),
                          "413": _error("over 30,000 data points or 8 MiB: use a job")}}},
        "/v1/jobs": {
            "get": {"summary": "Every detection job's state, oldest first.",
                    "responses": {"200": _json({"type": "array", "items": _ref("job-status.v1")},
                                               "job states"),
                                  "503": _error("the job-status topic did not answer")}},
            "post": {"summary": "Queue a detection job over a file or object (docs/batch.md).",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["model", "input", "output"],
                         "additionalProperties": False, "properties": {
                             "model": {"type": "string"},
                             "input": {"type": "string", "description": "A path the workers read, "
                                       "or s3://bucket/key; .json: the signalNames/data form, else CSV"},
                             "output": {"type": "string", "description": "A directory or s3://bucket/prefix"},
                             "name": {"type": "string"}, "model_version": {"type": "integer"},
                             "sensitivity": {"type": "integer"}, "max_fill_points": {"type": "integer"},
                             "timestamp_column": {"type": "string"}}}}}},
                     "responses": {"202": _json(_ref("job-status.v1"), "queued: its Accepted state"),
                                   "400": _error("malformed: the field at fault is named"),
                                   "503": _error("the jobs topic did not take it")}}},
        "/v1/jobs/{job_id}": {"get": {
            "summary": "One job's state: progress, counts, rejected rows, reason, results file.",
            "parameters": [_JOB],
            "responses": {"200": _json(_ref("job-status.v1"), "the job's state"),
                          "404": _error("no such job")}}},
        "/v1/jobs/{job_id}/cancel": {"post": {
            "summary": "Ask a job to stop: it ends Canceled, with no results file.",
            "parameters": [_JOB],
            "responses": {"202": _json(_ref("job-status.v1"), "requested: the job's state then"),
                          "404": _error("no such job"),
                          "409": _error("the job is already final")}}},
        OPENAPI_PATH: {"get": {
            "summary": "This description.",
            "responses": {"200": _json(_ANY_OBJECT, "OpenAPI 3.1")}}},
    }
    components: dict[str, Any] = {name: _embedded(name) for name in EMBEDDED}
    components["Error"] = {"type": "object", "required": ["error"],
                           "properties": {"error": {"type": "string"}}}
    components["Health"] = {"type": "object", "required": ["status"], "properties": {
        "status": {"enum": ["ok", "unavailable"]}, "reason": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "assetwatch worker", "version": "1",
                 "description": "The REST surface every assetwatch worker serves on its web port."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": components},
    }


def register_openapi(app: faust.App) -> None:
    """``GET /v1/openapi.json`` on the worker's web server."""
    document = openapi_document()

    @app.page(OPENAPI_PATH, name="assetwatch_openapi")
    class OpenApi(View):
        async def get(self, request: Request) -> Response:
            return self.json(document)
