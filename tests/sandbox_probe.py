"""A workflow that tries what the sandbox forbids, for tests/test_sandbox.py. Its own module:
the sandbox imports a workflow's module afresh, and this one needs nothing but the SDK."""

from datetime import datetime

from temporalio import workflow


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        try:
            datetime.now()
        except Exception as err:  # noqa: BLE001 — which refusal it was is the answer
            return type(err).__name__
        return "read the clock"
