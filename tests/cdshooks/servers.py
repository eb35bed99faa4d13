"""Real HTTP servers on loopback for the black-box CDS Hooks tests.

- ``StubServer``: a tiny threaded HTTP server whose answers the test sets per path; it records
  every request (path, query, headers) so tests can see what the service fetched and with which
  token. Used as the EHR's FHIR server and as the EHR's JWKS endpoint.
- ``fhir_routes``: a minimal FHIR R4 server over a list of resources: Patient read, and the
  Observation/Condition/MedicationRequest/MedicationStatement/AllergyIntolerance searches our
  prefetch templates use (with ``_include`` of the Medication), and Medication read.
- ``RunningApp``: the real application under uvicorn on 127.0.0.1 with an ephemeral port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn

from engine.api.app import create_app
from engine.settings import Settings

Route = Callable[[str, dict[str, list[str]]], tuple[int, Any]]


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class StubServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}  # first path segment -> handler
        self.delays: dict[str, float] = {}  # first path segment -> seconds to wait before answering
        self.seen: list[Seen] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                segment = parts.path.strip("/").split("/")[0]
                stub.seen.append(
                    Seen(parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()})
                )
                if segment in stub.delays:
                    time.sleep(stub.delays[segment])
                route = stub.routes.get(segment)
                status, body = route(parts.path, parse_qs(parts.query)) if route else (404, None)
                payload = json.dumps(body).encode() if body is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def requests_for(self, segment: str) -> list[Seen]:
        return [s for s in self.seen if s.path.strip("/").split("/")[0] == segment]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def searchset(resources: list[dict[str, Any]], link: list[dict[str, str]] | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if link:
        bundle["link"] = link
    return bundle


def _codes(resource: dict[str, Any]) -> set[str]:
    out = set()
    for c in resource.get("code", {}).get("coding", []):
        out.add(f"{c.get('system')}|{c.get('code')}")
        out.add(str(c.get("code")))
    return out


def fhir_routes(resources: list[dict[str, Any]]) -> dict[str, Route]:
    """Patient read and type searches filtered by code/status the way a FHIR server would."""

    def read_patient(path: str, _q: dict[str, list[str]]) -> tuple[int, Any]:
        pid = path.strip("/").split("/")[-1]
        hit = next((r for r in resources if r["resourceType"] == "Patient" and r.get("id") == pid), None)
        return (
            (200, hit)
            if hit
            else (404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]})
        )

    def search(rtype: str) -> Route:
        def handler(_path: str, q: dict[str, list[str]]) -> tuple[int, Any]:
            found = [r for r in resources if r["resourceType"] == rtype]
            if "code" in q:
                wanted = set(q["code"][0].split(","))
                found = [r for r in found if _codes(r) & wanted]
            if "status" in q:
                found = [r for r in found if r.get("status") in q["status"][0].split(",")]
            if q.get("_sort") == ["-date"]:
                found.sort(key=lambda r: r.get("effectiveDateTime", ""), reverse=True)
            if "_count" in q:
                found = found[: int(q["_count"][0])]
            bundle = searchset(found)
            if q.get("_include") == [f"{rtype}:medication"]:
                wanted_ids = {
                    str(r.get("medicationReference", {}).get("reference", "")).rsplit("/", 1)[-1] for r in found
                }
                bundle["entry"] += [
                    {"resource": m, "search": {"mode": "include"}}
                    for m in resources
                    if m["resourceType"] == "Medication" and m.get("id") in wanted_ids
                ]
            return 200, bundle

        return handler

    def read_medication(path: str, _q: dict[str, list[str]]) -> tuple[int, Any]:
        mid = path.strip("/").split("/")[-1]
        hit = next((r for r in resources if r["resourceType"] == "Medication" and r.get("id") == mid), None)
        return (200, hit) if hit else (404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]})

    routes: dict[str, Route] = {"Patient": read_patient, "Medication": read_medication}
    for rtype in ("Observation", "Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance"):
        routes[rtype] = search(rtype)
    return routes


class RunningApp:
    """The app under uvicorn in a thread; ``url`` is its loopback address."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    @property
    def state(self) -> Any:
        return self.app.state.cds

    def close(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
