"""The data converter every client, worker and replayer of the project uses."""

import dataclasses

from temporalio.converter import DataConverter, WorkflowSerializationContext

from domain.models import CaseIntake, Command
from runtime.temporal import SharedPydanticPayloadConverter, data_converter
from tests.factories import HOTLINE, OFFICER, cmd, intake


def test_a_data_converter_built_again_reuses_the_one_payload_converter():
    # The SDK builds a data converter per workflow task (dataclasses.replace, or a new one of
    # the same classes); each must reuse the one payload converter and its cache of type
    # adapters instead of building another.
    rebuilt = [dataclasses.replace(data_converter),
               DataConverter(payload_converter_class=data_converter.payload_converter_class)]
    inner = vars(data_converter.payload_converter)["_inner_payload_converter"]
    assert isinstance(inner, SharedPydanticPayloadConverter)
    for converter in rebuilt:
        assert vars(converter.payload_converter)["_inner_payload_converter"] is inner


def test_a_case_intake_and_an_action_cross_the_converter_unchanged():
    opened = intake(None)
    action = cmd("submit_rectification", OFFICER, report="已清运垃圾并消杀",
                 evidence=["https://img.example.cn/after.jpg"])
    converter = data_converter.with_context(
        WorkflowSerializationContext(namespace="bihuan", workflow_id=opened.case_id))
    payloads = converter.payload_converter.to_payloads([opened, action, HOTLINE])
    back = converter.payload_converter.from_payloads(payloads, [CaseIntake, Command, None])
    assert back[0] == opened and back[0].opened_at.tzinfo is not None
    assert back[1] == action and back[1].payload.report == "已清运垃圾并消杀"
    # Without a type hint the JSON comes back as plain data, as the SDK's own converter gives.
    assert back[2] == HOTLINE.model_dump(mode="json")
