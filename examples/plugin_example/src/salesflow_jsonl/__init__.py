"""An example salesflow plugin: every committed domain event becomes one line of a JSON Lines file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import salesflow

__all__ = ["events_file", "salesflow_handle_event"]


def events_file() -> Path:
    """Where events go: ``$SALESFLOW_EVENTS_FILE`` or ``salesflow-events.jsonl``."""
    return Path(os.environ.get("SALESFLOW_EVENTS_FILE", "salesflow-events.jsonl"))


@salesflow.hookimpl
def salesflow_handle_event(event: salesflow.Event, storage_url: str) -> None:
    """Append ``event`` (already committed to ``storage_url``) as one JSON line."""
    record = {**event.to_dict(), "storage": storage_url}
    with events_file().open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
