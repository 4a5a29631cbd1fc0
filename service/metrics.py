"""Prometheus metrics at ``GET /metrics``: requests by route, latency, and what the served index holds.

Each app has its own registry, so several apps in one process (tests, workers) never share counters.
Labels are route templates, never raw paths, so their number stays bounded whatever clients send.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import State

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

router = APIRouter(include_in_schema=False)


class Metrics:
    def __init__(self, state: State) -> None:
        self.registry = CollectorRegistry()
        self.in_progress = 0  # requests received and not yet answered; changed on the event loop only
        Gauge("hoidap_http_requests_in_progress", "Requests received and not yet answered",
              registry=self.registry).set_function(lambda: self.in_progress)
        self.requests = Counter("hoidap_http_requests", "HTTP requests answered", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("hoidap_http_request_duration_seconds", "Time to answer a request",
                                 ["route"], registry=self.registry)

        def info(field: str) -> float:
            return getattr(state.engine.store.info, field) if state.engine is not None else 0

        Gauge("hoidap_index_documents", "Documents in the served index (0 without one)",
              registry=self.registry).set_function(lambda: info("documents"))
        Gauge("hoidap_index_passages", "Passages in the served index (0 without one)",
              registry=self.registry).set_function(lambda: info("passages"))
        Gauge("hoidap_index_loaded_timestamp_seconds", "When the served index was loaded, in Unix time (0 before)",
              registry=self.registry).set_function(lambda: state.loaded_at or 0)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """The Prometheus text exposition of this app's metrics."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
