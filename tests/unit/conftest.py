from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from adapters.console.sender import ConsoleMessageSender
from adapters.echo.responder import EchoResponder
from adapters.in_memory.clock import FrozenClock
from adapters.in_memory.job_queue import InMemoryJobQueue
from adapters.in_memory.repositories import InMemoryStore
from adapters.in_memory.unit_of_work import InMemoryUnitOfWork
from adapters.system.ids import UlidGenerator
from application.policy import AssistantPolicy, ConversationPolicy
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.receive_inbound import ReceiveInboundMessage
from application.use_cases.record_delivery_status import RecordDeliveryStatus
from application.use_cases.send_outbound import SendOutboundMessage
from tests.unit.splitting import SPLITTER


@dataclass
class Fakes:
    """Use cases built by hand on in-memory adapters: no I/O at all."""

    store: InMemoryStore = field(default_factory=InMemoryStore)
    queue: InMemoryJobQueue = field(default_factory=lambda: InMemoryJobQueue(max_attempts=3))
    clock: FrozenClock = field(default_factory=FrozenClock)
    ids: UlidGenerator = field(default_factory=UlidGenerator)
    sender: ConsoleMessageSender = field(default_factory=ConsoleMessageSender)
    responder: EchoResponder = field(default_factory=EchoResponder)
    policy: ConversationPolicy = field(default_factory=ConversationPolicy)
    assistant: AssistantPolicy = field(default_factory=AssistantPolicy)

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store)

    def receive(self) -> ReceiveInboundMessage:
        return ReceiveInboundMessage(self.uow(), self.queue, self.clock, self.ids, self.policy)

    def generate(self) -> GenerateReply:
        return GenerateReply(self.uow(), self.responder, self.queue, self.clock, self.ids,
                             self.assistant)

    def send(self) -> SendOutboundMessage:
        return SendOutboundMessage(self.uow(), self.sender, self.clock, SPLITTER)

    def record_status(self) -> RecordDeliveryStatus:
        return RecordDeliveryStatus(self.uow(), self.clock)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()
