"""Optional OpenTelemetry tracing: a span per RPC and per datastore call, or nothing at all.

`Tracer.from_mode(mode)` picks one of:

- ``off`` (the default): `Tracer.NOOP`; spans cost one attribute check and nothing else.
- ``otel``: the OpenTelemetry API's global tracer provider, as configured by the process
  (for example by ``opentelemetry-instrument`` or by an embedding application).
- ``console``: an SDK provider that prints finished spans to stdout (for trying it out).
- ``otlp``: an SDK provider exporting over OTLP/gRPC, configured by the standard
  ``OTEL_EXPORTER_OTLP_*`` environment variables.

A mode other than ``off`` without the packages it needs is a configuration error naming
the package to install (``opentelemetry-api``, ``opentelemetry-sdk``,
``opentelemetry-exporter-otlp``); rebac itself does not depend on them. Incoming W3C
``traceparent`` metadata becomes the parent of the RPC span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from rebac.errors import InvalidRequestError

__all__ = ["TRACING_MODES", "Tracer"]

TRACING_MODES = ("off", "otel", "console", "otlp")
"""The values of ``--tracing``."""


def _missing(package: str, mode: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"--tracing {mode} needs the `{package}` package (pip install {package})", field="tracing"
    )


class Tracer:
    """Starts spans on an OpenTelemetry tracer, or does nothing when there is none."""

    NOOP: ClassVar[Tracer]

    def __init__(self, otel_tracer: Any | None) -> None:
        self._tracer = otel_tracer

    @property
    def enabled(self) -> bool:
        """True if spans are recorded somewhere."""
        return self._tracer is not None

    @classmethod
    def from_provider(cls, provider: Any) -> Tracer:
        """A tracer on an OpenTelemetry `TracerProvider` (tests pass an in-memory one)."""
        return cls(provider.get_tracer("rebac"))

    @classmethod
    def from_mode(cls, mode: str) -> Tracer:
        """The tracer for a ``--tracing`` mode; InvalidRequestError if its packages are missing."""
        if mode == "off":
            return cls.NOOP
        if mode not in TRACING_MODES:
            raise InvalidRequestError(
                f"tracing: unknown mode {mode!r} (valid: {', '.join(TRACING_MODES)})", field="tracing"
            )
        try:
            from opentelemetry import trace  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        except ImportError:
            raise _missing("opentelemetry-api", mode) from None
        if mode == "otel":
            return cls(trace.get_tracer("rebac"))
        try:
            # Optional dependencies: mypy may not find them (hence the ignores).
            from opentelemetry.sdk.trace import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
                TracerProvider,
            )
            from opentelemetry.sdk.trace.export import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
                BatchSpanProcessor,
                ConsoleSpanExporter,
                SpanExporter,
            )
        except ImportError:
            raise _missing("opentelemetry-sdk", mode) from None
        exporter: SpanExporter
        if mode == "console":
            exporter = ConsoleSpanExporter()
        else:
            try:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
                    OTLPSpanExporter,
                )
            except ImportError:
                raise _missing("opentelemetry-exporter-otlp", mode) from None
            exporter = OTLPSpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls.from_provider(provider)

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        *,
        carrier: Mapping[str, str] | None = None,
    ) -> Iterator[Any]:
        """A span around the block (None when tracing is off); `carrier` holds W3C headers.

        An exception leaving the block is recorded on the span and re-raised.
        """
        if self._tracer is None:
            yield None
            return
        context = None
        if carrier:
            from opentelemetry.propagate import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
                extract,
            )

            context = extract(dict(carrier))
        with self._tracer.start_as_current_span(name, context=context, attributes=attributes) as span:
            yield span

    def start_span(self, name: str) -> Any | None:
        """A started span that is not made current; the caller ends it. None when off.

        For async generators, whose context may change between yields.
        """
        if self._tracer is None:
            return None
        return self._tracer.start_span(name)


Tracer.NOOP = Tracer(None)
