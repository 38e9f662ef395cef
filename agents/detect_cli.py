"""``assetwatch detect``: score a small table at once, as ``POST /v1/detect`` does (SPEC §8).

``--data FILE`` (or ``-`` for standard input) holds the table: JSON in the
``{"signalNames": [...], "data": [{"timestamp", "values"}]}`` form, or CSV with a timestamp
column (converted to that form). The model comes from the model store (``--models``), and
the table is scored in this process by the stream's scoring path; with ``--url`` the request
goes to a worker's ``POST /v1/detect`` instead. Either way the limit is 30,000 data points;
more belongs in a job (``assetwatch job create``).

Errors end in one line ``assetwatch: error: ...``, exit status 2.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click
import orjson

from agents.cli_support import CliUserError
from agents.detect import MAX_BODY_BYTES, detect
from agents.model_store import ModelStore
from agents.settings import Settings
from streams.training import TIMESTAMP_NAMES, detect_delimiter


def _read(data: str) -> bytes:
    if data == "-":
        return sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
    path = Path(data)
    if not path.is_file():
        raise CliUserError(f"no such file: {data}")
    with path.open("rb") as fh:
        return fh.read(MAX_BODY_BYTES + 1)


def _number(cell: str) -> float | str | None:
    t = cell.strip()
    if t.lower() in ("", "nan", "null", "none", "na", "n/a", "-"):
        return None
    try:
        return float(t)
    except ValueError:
        return t  # the schema names it: data[i].values[j] must be number or null


def csv_request(text: str, timestamp_column: str | None) -> dict[str, Any]:
    """A CSV table in the request's ``signalNames``/``data`` form.

    >>> csv_request("ts,a,b\\n0,1,\\n", None)
    {'signalNames': ['a', 'b'], 'data': [{'timestamp': '0', 'values': [1.0, None]}]}
    """
    lines = text.lstrip("\ufeff").splitlines()
    header_line = next((ln for ln in lines if ln.strip()), "")
    delimiter = detect_delimiter(header_line)
    rows = [r for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter) if r]
    if not rows:
        raise CliUserError("the data has no header and no rows")
    header = [h.strip() for h in rows[0]]
    if timestamp_column is not None:
        if timestamp_column not in header:
            raise CliUserError(f"no timestamp column {timestamp_column!r} (columns: {', '.join(header)})")
        ts = header.index(timestamp_column)
    else:
        lowered = [h.lower() for h in header]
        ts = next((lowered.index(n) for n in TIMESTAMP_NAMES if n in lowered), 0)
    cols = [i for i in range(len(header)) if i != ts]
    data = []
    for n, row in enumerate(rows[1:], start=1):
        if len(row) > len(header):
            raise CliUserError(f"row {n} has {len(row)} fields, the header has {len(header)}")
        row = row + [""] * (len(header) - len(row))
        data.append({"timestamp": row[ts].strip(), "values": [_number(row[i]) for i in cols]})
    return {"signalNames": [header[i] for i in cols], "data": data}


def _api_token() -> str | None:
    """The operator's REST token, from the worker's own settings (ASSETWATCH_API_TOKEN or
    ASSETWATCH_API_TOKEN_FILE): a worker refuses a POST without it (docs/control.md)."""
    try:
        return Settings.from_env(os.environ).api_token
    except ValueError as exc:
        raise CliUserError(str(exc)) from None


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    token = _api_token()
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url.rstrip("/") + "/v1/detect", data=body, method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        try:
            return err.code, orjson.loads(err.read())
        except orjson.JSONDecodeError:
            return err.code, {"error": f"HTTP {err.code} {err.reason}"}
    except OSError as exc:
        raise CliUserError(f"cannot reach the worker at {url}: {exc}") from None


def _text(result: dict[str, Any]) -> str:
    c = result["counts"]
    lines = [f"model {result['model_id']}/{result['model_version']} at sensitivity "
             f"{result['sensitivity']}: {c['rows']} timestamps, {c['scored']} scored, "
             f"{c['warming_up']} warming up, {c['anomalies']} anomalous"]
    for a in result["anomalies"]:
        expected = a["expected"] or {}
        parts = []
        for s in a["signals"]:
            exp = f", expected {expected[s]:.4g}" if s in expected else ""
            parts.append(f"{s} {a['actual'].get(s, float('nan')):.4g}{exp}")
        lines.append(f"{a['timestamp_iso']}  severity {a['severity']:.2f}  score {a['score']:.3g}  "
                     + "; ".join(parts) + ("  (filled)" if a["filled"] else ""))
    return "\n".join(lines)


@click.command("detect")
@click.option("--model", "model_id", required=True, help="Model id.")
@click.option("--data", required=True, metavar="FILE|-",
              help="The table: JSON (signalNames/data) or CSV; - reads standard input.")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Model version (default: latest).")
@click.option("--sensitivity", type=click.IntRange(1, 100), default=None,
              help="1-100 (default: the model's target-FAR sensitivity, else 70).")
@click.option("--timestamp-column", default=None, help="CSV timestamp column (default as in training).")
@click.option("--url", default=None, metavar="URL",
              help="A worker's web address (e.g. http://127.0.0.1:6066): score there instead.")
@click.option("--models", "models_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model store directory (env ASSETWATCH_MODELS_DIR, default var/models).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def detect_cmd(model_id: str, data: str, version: int | None, sensitivity: int | None,
               timestamp_column: str | None, url: str | None, models_dir: Path | None,
               as_json: bool) -> None:
    """Score a small table (at most 30,000 data points) with model MODEL and print the anomalies."""
    raw = _read(data)
    if len(raw) > MAX_BODY_BYTES:
        raise CliUserError(f"the data is over {MAX_BODY_BYTES:,} bytes, more than a synchronous "
                           "request takes; use an asynchronous job (assetwatch job create)")
    text = raw.decode("utf-8-sig", errors="replace")
    if text.lstrip().startswith("{"):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CliUserError(f"the data is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise CliUserError('the data must be a JSON object {"signalNames": [...], "data": [...]}')
    else:
        doc = csv_request(text, timestamp_column)
    doc = {**doc, "model": model_id}
    if version is not None:
        doc["model_version"] = version
    if sensitivity is not None:
        doc["sensitivity"] = sensitivity
    body = orjson.dumps(doc)
    if url is not None:
        status, result = _post(url, body)
    else:
        settings = Settings.from_env(os.environ, models_dir=models_dir)
        status, result = detect(ModelStore(settings.models_dir), body)
    if status != 200:
        raise CliUserError(f"{result.get('error', result)} (HTTP {status})")
    click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() if as_json else _text(result))
