from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config.settings import Settings
from workflows import search_attributes


class SharedPydanticPayloadConverter(PydanticPayloadConverter):
    """The SDK's pydantic converter, built once. The SDK derives a fresh data converter for
    every workflow task and activity, and each derivation builds its payload converter anew,
    with an empty cache of type adapters: a few per cent of the worker's CPU. This converter
    keeps no state but that cache (thread-safe), so one instance serves them all."""

    _shared: "SharedPydanticPayloadConverter | None" = None

    def __new__(cls) -> "SharedPydanticPayloadConverter":
        if cls._shared is None:
            shared = super().__new__(cls)
            PydanticPayloadConverter.__init__(shared)
            cls._shared = shared
        return cls._shared

    def __init__(self) -> None:
        """Built in __new__, once."""


data_converter = DataConverter(payload_converter_class=SharedPydanticPayloadConverter)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter, runtime=runtime)


def metrics_runtime(bind_address: str) -> Runtime:
    """An SDK runtime exporting the SDK's own metrics (task latencies, slots, polls, activity
    and workflow counts) for Prometheus at http://bind_address/metrics."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


async def register_search_attributes(client: Client) -> None:
    """For servers started without `--search-attribute` flags (the time-skipping test server)."""
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={key.name: key.indexed_value_type.value
                           for key in search_attributes.ALL_KEYS}))
