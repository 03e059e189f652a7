"""The workflow sandbox, with the few lines it executes around every activation compiled once.

The SDK's sandbox enters each workflow instance by `exec` of a short source snippet: on every
activation, and again for every command whose payloads it converts. `exec` of a string parses
and compiles it each time, which measured about a tenth of the worker's CPU under load
(`bench/lifecycle.py --profile`). The snippets are a handful of fixed strings, so each is
compiled once here; what runs, and every restriction of the sandbox, is unchanged.

This leans on the SDK's private instance class. If a release renames it, the worker runs the
stock sandbox rather than fail; if a release changes it otherwise, tests/test_sandbox.py fails.
"""

from dataclasses import dataclass
from functools import cache
from types import CodeType

from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import _runner

from runtime.logging import get_logger

log = get_logger("runtime.sandbox")


@cache
def _compiled(source: str) -> CodeType:
    return compile(source, "<string>", "exec")


_StockInstance = getattr(_runner, "_Instance", None)
_HOOKABLE = _StockInstance is not None and callable(getattr(_StockInstance, "_run_code", None))

if _HOOKABLE:
    class _Instance(_StockInstance):  # type: ignore[misc, valid-type]
        def _run_code(self, code: str, **extra_globals) -> None:
            super()._run_code(_compiled(code), **extra_globals)

    @dataclass(frozen=True)
    class CompiledOnceSandboxRunner(SandboxedWorkflowRunner):
        def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
            return _Instance(det, self.runner_class, self.restrictions)


def workflow_runner() -> WorkflowRunner:
    """The sandbox the worker runs workflows in."""
    if _HOOKABLE:
        return CompiledOnceSandboxRunner()
    log.warning("the SDK's sandbox changed; running it as it comes (slower)")
    return SandboxedWorkflowRunner()
