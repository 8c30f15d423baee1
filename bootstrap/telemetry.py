"""OpenTelemetry providers built from settings: OTLP over HTTP when an endpoint is set,
nothing exported otherwise.

Providers are objects held by the container, not process globals: each container (each
test) gets its own, and nothing is installed at import time. Without an endpoint, spans are
not sampled (they still carry trace ids, which the logs show) and the meter is a no-op.
The SDK comes with the ``otel`` extra; without it, and without an endpoint, the API's no-op
providers stand in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import Meter, MeterProvider, NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, Tracer, TracerProvider

from adapters.observability.metrics import Instruments
from bootstrap.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace import SpanProcessor

INSTRUMENTATION_NAME = "whatsapp-core"
_SHUTDOWN_TIMEOUT_MS = 5000


@dataclass(eq=False)
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporting: bool
    """True when spans or metrics go somewhere (OTLP, or a test's in-memory exporter)."""
    exporters: tuple[str, ...] = ()
    _closed: bool = field(default=False, init=False)

    @cached_property
    def tracer(self) -> Tracer:
        return self.tracer_provider.get_tracer(INSTRUMENTATION_NAME)

    @cached_property
    def meter(self) -> Meter:
        return self.meter_provider.get_meter(INSTRUMENTATION_NAME)

    @cached_property
    def instruments(self) -> Instruments:
        # Created once per meter: the SDK warns when an instrument name is registered twice.
        return Instruments.create(self.meter)

    def shutdown(self) -> None:
        """Flush and stop exporters; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        # The API's no-op providers have no shutdown.
        tracer_shutdown = getattr(self.tracer_provider, "shutdown", None)
        if tracer_shutdown is not None:
            tracer_shutdown()
        meter_shutdown = getattr(self.meter_provider, "shutdown", None)
        if meter_shutdown is not None:
            meter_shutdown(timeout_millis=_SHUTDOWN_TIMEOUT_MS)

    async def aclose(self) -> None:
        # Flushing may wait on the network: keep it off the event loop.
        await asyncio.to_thread(self.shutdown)


def build_telemetry(
    settings: Settings,
    *,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
) -> Telemetry:
    """Providers for ``settings``; tests add in-memory processors and readers."""
    endpoint = settings.otel_exporter_otlp_endpoint
    try:
        from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
    except ImportError:
        if endpoint or span_processors or metric_readers:
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not "
                "installed: install the `otel` extra"
            ) from None
        return Telemetry(NoOpTracerProvider(), NoOpMeterProvider(), exporting=False)
    resource = Resource.create({SERVICE_NAME: settings.otel_service_name})
    processors = list(span_processors)
    readers = list(metric_readers)
    exporters: list[str] = []
    if endpoint:
        processors.append(_otlp_span_processor(f"{endpoint}/v1/traces"))
        readers.append(_otlp_metric_reader(f"{endpoint}/v1/metrics"))
        exporters.append("otlp")
    tracer_provider = SdkTracerProvider(
        resource=resource,
        # Unsampled spans still get trace ids (for logs and propagation) but cost nothing.
        sampler=ALWAYS_ON if processors else ALWAYS_OFF,
        shutdown_on_exit=False,
    )
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    # With no reader the SDK still aggregates every measurement for nobody (about 8 us a
    # measurement here, several per message and job): the API's no-op meter instead.
    meter_provider: MeterProvider = SdkMeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    ) if readers else NoOpMeterProvider()
    return Telemetry(tracer_provider, meter_provider, bool(processors or readers),
                     tuple(exporters))


def _otlp_span_processor(url: str) -> Any:
    # The exporter package belongs to the `otel` extra: imported only when configured.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=url))


def _otlp_metric_reader(url: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=url))
