"""One log format for every line a process writes: structlog's own and the standard library's
(uvicorn, the Temporal SDK, workflow.logger) alike. JSON in production, one per line, so a log
shipper can index case_id, workflow_id, request_id, actor and action; readable text elsewhere.

What a line is about is bound with structlog's contextvars: the API binds the request id, the
caller, the case and the action for a request; the worker binds them around each ledger write.
Workflow code logs through workflow.logger, whose records carry the workflow's ids as `extra`.
"""

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict

# The workflow ids workflow.logger attaches to each record (temporalio's LoggerAdapter).
_TEMPORAL_EXTRA = ("temporal_workflow", "temporal_activity")


def _temporal_ids(_logger, _name: str, event: EventDict) -> EventDict:
    """Lifts the ids the Temporal SDK attaches to a record to top-level keys; a case
    workflow's id is the case id."""
    for key in _TEMPORAL_EXTRA:
        info = event.pop(key, None)
        if isinstance(info, dict):
            event.setdefault("workflow_id", info.get("workflow_id"))
            if info.get("workflow_type") == "CaseWorkflow" or key == "temporal_activity":
                event.setdefault("case_id", info.get("workflow_id"))
            for field in ("workflow_type", "run_id", "activity_type", "attempt"):
                if info.get(field) is not None:
                    event.setdefault(field, info[field])
    return event


def configure(level: str = "INFO", json: bool = False, stream: TextIO | None = None) -> None:
    shared = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
              structlog.stdlib.add_logger_name, structlog.processors.TimeStamper(fmt="iso")]
    renderer = (structlog.processors.JSONRenderer(ensure_ascii=False) if json
                else structlog.dev.ConsoleRenderer())
    structlog.configure(
        # A line below the level is dropped before anything is added to it: the API and the
        # worker log every request and ledger write at INFO.
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _temporal_ids],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own loggers go through the same handler (`bihuan api` passes log_config=None).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str):
    return structlog.get_logger(name)
