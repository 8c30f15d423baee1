"""In-memory telemetry and captured log output for the observability tests."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bootstrap.logging import configure_logging, reset_logging
from bootstrap.settings import Settings
from bootstrap.telemetry import Telemetry, build_telemetry


@dataclass
class Recorded:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """Data points of one metric, across every scope."""
        data = self.metrics.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    telemetry = build_telemetry(Settings(_env_file=None),  # type: ignore[call-arg]
                                span_processors=[SimpleSpanProcessor(spans)],
                                metric_readers=[reader])
    yield Recorded(telemetry, spans, reader)
    telemetry.shutdown()


class LogCapture:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def configure(self, settings: Settings) -> None:
        configure_logging(settings, stream=self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every captured line, parsed as JSON (fails on a line that is not)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    yield capture
    reset_logging()
