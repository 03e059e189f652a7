from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config.settings import Settings
from workflows import search_attributes


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=pydantic_data_converter, runtime=runtime)


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
