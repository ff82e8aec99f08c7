"""The hub's HTTP API (SPEC.md section 6) on Starlette: ingest, the map, flows, changes, the page,
metrics and liveness."""
from __future__ import annotations

import datetime as dt
import sys

import orjson

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..config import LEVELS
from ..datamap.page import render
from .service import SIGNATURE_HEADER, Hub



class _BadFilter(ValueError):
    pass


def _filters(request: Request) -> dict:
    """The map's filters from the query string, checked: data_type, sensitivity, namespace, external, since."""
    q = request.query_params
    out: dict = {}
    if q.get("data_type"):
        out["data_type"] = q["data_type"]
    if q.get("sensitivity"):
        if q["sensitivity"] not in LEVELS:
            raise _BadFilter("sensitivity must be low, medium or high")
        out["level"] = q["sensitivity"]
    if q.get("namespace"):
        out["namespace"] = q["namespace"]
    if q.get("external"):
        if q["external"].lower() not in ("true", "false"):
            raise _BadFilter("external must be true or false")
        out["external"] = q["external"].lower() == "true"
    if q.get("since"):
        try:
            since = dt.datetime.fromisoformat(q["since"])
        except ValueError:
            raise _BadFilter("since must be an ISO 8601 time") from None
        out["since"] = since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)
    return out


def create_app(hub: Hub, max_body_bytes: int = 10 << 20) -> Starlette:
    def token_of(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.query_params.get("token")  # for the page opened in a browser

    def reader(handler):
        async def guarded(request: Request):
            if not hub.authorized(token_of(request)):
                hub.metrics.refused.labels("token").inc()
                return JSONResponse({"error": "a valid bearer token is required"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request, _filters(request))
            except _BadFilter as e:
                return JSONResponse({"error": str(e)}, status_code=400)
            except Exception as e:  # noqa: BLE001 - the database: say so, never a traceback
                print(f"pii-sensor hub: {request.url.path} failed ({type(e).__name__})", file=sys.stderr, flush=True)
                return JSONResponse({"error": f"storage unavailable ({type(e).__name__})"}, status_code=503)
        return guarded

    async def ingest(request: Request):
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                hub.metrics.refused.labels("too_large").inc()
                return JSONResponse({"error": f"body larger than {max_body_bytes} bytes"}, status_code=413)
        if not hub.signed(bytes(body), request.headers.get(SIGNATURE_HEADER)):
            hub.metrics.refused.labels("signature").inc()
            return JSONResponse({"error": "missing or wrong signature"}, status_code=401)
        accepted, rejected = hub.ingest(bytes(body))
        return JSONResponse({"accepted": accepted, "rejected": rejected}, status_code=202)

    async def the_map(request: Request, filters: dict):
        return Response(await _off_loop(hub.document_json, **filters), media_type="application/json")

    async def flows(request: Request, filters: dict):
        if "text/csv" in request.headers.get("accept", ""):
            return PlainTextResponse(await _off_loop(hub.flows_csv, **filters), media_type="text/csv")
        return _json({"flows": (await _off_loop(hub.document, **filters))["edges"]})

    async def changes(request: Request, filters: dict):
        try:
            limit = min(max(int(request.query_params.get("limit", 500)), 1), 10_000)
        except ValueError:
            return JSONResponse({"error": "limit must be a number"}, status_code=400)
        return JSONResponse({"changes": await _off_loop(hub.store.changes, limit)})

    async def page(request: Request, filters: dict):
        document = await _off_loop(hub.document, **filters)
        return HTMLResponse(render(document, list(reversed(await _off_loop(hub.store.changes, 200)))))

    async def metrics(request: Request):
        return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request):
        return JSONResponse({"status": "ok", "database": "up" if hub.database_up else "down"})

    return Starlette(routes=[
        Route("/api/v1/events", ingest, methods=["POST"]),
        Route("/api/v1/map", reader(the_map)),
        Route("/api/v1/flows", reader(flows)),
        Route("/api/v1/changes", reader(changes)),
        Route("/", reader(page)),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
    ])


def _json(document) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")  # a big map: orjson is ~10x faster


async def _off_loop(fn, *args, **kwargs):
    """Database work in a thread, so a slow query does not stall ingest."""
    return await run_in_threadpool(fn, *args, **kwargs)
