"""The approval engine under random action sequences (the reusable machine in salesflow.testing).

The same machine runs once against its in-memory reference store and once against a store that
keeps every request as JSON text, the way a storage backend plugs in.
"""

from __future__ import annotations

import json

from hypothesis import settings

from salesflow.domain.approvals import ApprovalRequest
from salesflow.errors import ConcurrencyError
from salesflow.testing.approval_machine import ApprovalMachine


class JsonStoreApprovalMachine(ApprovalMachine):
    """The machine against a store of JSON documents with compare-and-set on the version."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, str] = {}

    def save_request(self, request: ApprovalRequest) -> None:
        stored = self.documents.get(request.id)
        actual = None if stored is None else json.loads(stored)["version"]
        expected = request.version - 1 if request.version else None
        if actual != expected:
            raise ConcurrencyError(
                "approval request", request.id, max(request.version - 1, 0), actual
            )
        self.documents[request.id] = json.dumps(request.to_dict())

    def load_request(self, request_id: str) -> ApprovalRequest:
        return ApprovalRequest.from_dict(json.loads(self.documents[request_id]))


TestApprovalMachine = ApprovalMachine.TestCase
TestApprovalMachine.settings = settings(stateful_step_count=40)

TestApprovalMachineOnJsonStore = JsonStoreApprovalMachine.TestCase
TestApprovalMachineOnJsonStore.settings = settings(stateful_step_count=25)
