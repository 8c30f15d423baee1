"""The persistence contract every UnitOfWork + repositories adapter must pass.

Subclass ``RepositoryContract`` (or one of its parts) in a ``Test*`` class and supply a
``uow_factory`` fixture: a callable returning a fresh unit of work over one shared store.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from application.errors import ConcurrencyError, InvalidQuery, NotFound
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.ids import new_ulid
from domain.message import DeliveryStatus, Direction, Message, MessageType

UowFactory = Callable[[], UnitOfWork]

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
OWNER = "AC00000000000000000000000000000001"
CONTACT = "whatsapp:+5511999990001"
CHANNEL = "whatsapp:+14155238886"
INJECTION_NAMES = [
    "id; DROP TABLE messages",
    "id = id OR 1=1 --",
    "version) OR (1=1",
    "nonexistent",
    "",
]

_ticks = itertools.count(1)


def ulid() -> str:
    """A fresh ULID, strictly increasing within a test run (one millisecond per id)."""
    return new_ulid(1_714_564_800_000 + next(_ticks))


def conversation(
    *, owner_id: str = OWNER, contact: str = CONTACT, status: ConversationStatus | None = None
) -> Conversation:
    return Conversation(
        id=ulid(),
        owner_id=owner_id,
        contact=contact,
        channel=CHANNEL,
        status=status or ConversationStatus.OPEN,
        created_at=T0,
        updated_at=T0,
        last_message_at=T0,
    )


def message(conversation_id: str, **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "id": ulid(),
        "conversation_id": conversation_id,
        "owner_id": OWNER,
        "direction": Direction.INBOUND,
        "type": MessageType.TEXT,
        "body": "hello",
        "from_address": CONTACT,
        "to_address": CHANNEL,
        "status": DeliveryStatus.RECEIVED,
        "created_at": T0,
        "updated_at": T0,
        "provider_sid": f"SM{ulid()}",
    }
    fields.update(changes)
    return Message(**fields)


class _Base:
    async def stored_conversation(self, uow_factory: UowFactory, **kw: Any) -> Conversation:
        conv = conversation(**kw)
        async with uow_factory() as uow:
            await uow.repository(ConversationRepository).create(conv)
            await uow.commit()
        return conv

    async def stored_messages(
        self, uow_factory: UowFactory, conversation_id: str, n: int, **kw: Any
    ) -> list[Message]:
        msgs = [message(conversation_id, **kw) for _ in range(n)]
        async with uow_factory() as uow:
            for m in msgs:
                await uow.repository(MessageRepository).create(m)
            await uow.commit()
        return msgs


class CrudContract(_Base):
    async def test_create_then_get_returns_an_equal_entity(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        [msg] = await self.stored_messages(uow_factory, conv.id, 1)
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).get_by_id(conv.id) == conv
            assert await uow.repository(MessageRepository).get_by_id(msg.id) == msg
            assert await uow.repository(MessageRepository).get_by_id(ulid()) is None
            assert await uow.repository(ConversationRepository).get_by_id("not-an-id") is None

    async def test_update_bumps_version_and_persists(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        later = T0 + timedelta(minutes=5)
        async with uow_factory() as uow:
            updated = await uow.repository(ConversationRepository).update(conv.touched(later))
            await uow.commit()
        assert updated.version == conv.version + 1
        assert updated.last_message_at == later
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).get_by_id(conv.id) == updated

    async def test_stale_update_raises_and_changes_nothing(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        [msg] = await self.stored_messages(uow_factory, conv.id, 1)
        async with uow_factory() as uow:
            fresh = await uow.repository(MessageRepository).update(replace(msg, body="edited"))
            await uow.commit()
        async with uow_factory() as uow:
            # ``msg`` still carries version 1; the stored row is at 2.
            with pytest.raises(ConcurrencyError):
                await uow.repository(MessageRepository).update(replace(msg, body="stale edit"))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).get_by_id(msg.id) == fresh
            with pytest.raises(ConcurrencyError):
                await uow.repository(ConversationRepository).update(conversation())  # never stored

    async def test_delete(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        msgs = await self.stored_messages(uow_factory, conv.id, 2)
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).delete(msgs[0].id) is True
            assert await uow.repository(MessageRepository).delete(msgs[0].id) is False
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).get_by_id(msgs[0].id) is None
            assert await uow.repository(MessageRepository).get_by_id(msgs[1].id) == msgs[1]

    async def test_deleting_a_conversation_deletes_its_messages(
        self, uow_factory: UowFactory
    ) -> None:
        conv = await self.stored_conversation(uow_factory)
        other = await self.stored_conversation(uow_factory, contact="whatsapp:+5511999990002")
        await self.stored_messages(uow_factory, conv.id, 3)
        [kept] = await self.stored_messages(uow_factory, other.id, 1)
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).delete(conv.id) is True
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count() == 1
            assert await uow.repository(MessageRepository).find_by() == [kept]

    async def test_find_by_and_count(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        inbound = await self.stored_messages(uow_factory, conv.id, 3)
        outbound = await self.stored_messages(
            uow_factory,
            conv.id,
            2,
            direction=Direction.OUTBOUND,
            status=DeliveryStatus.PENDING,
            provider_sid=None,
        )
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).find_by(
                direction=Direction.OUTBOUND
            ) == outbound
            assert await uow.repository(MessageRepository).find_by(direction="inbound") == inbound
            assert await uow.repository(MessageRepository).find_by(provider_sid=None) == outbound
            assert await uow.repository(MessageRepository).find_by(
                conversation_id=conv.id, provider_sid=inbound[1].provider_sid
            ) == [inbound[1]]
            assert await uow.repository(MessageRepository).find_by(conversation_id=ulid()) == []
            assert await uow.repository(MessageRepository).count() == 5
            assert await uow.repository(MessageRepository).count(
                {"status": DeliveryStatus.PENDING}
            ) == 2
            filters = {"direction": "inbound", "conversation_id": conv.id}
            assert await uow.repository(MessageRepository).count(filters) == 3
            assert await uow.repository(ConversationRepository).count(
                {"owner_id": "someone else"}
            ) == 0
            assert await uow.repository(ConversationRepository).find_by(
                owner_id=OWNER, status="open"
            ) == [conv]

    @pytest.mark.parametrize("column", INJECTION_NAMES)
    async def test_unknown_filter_column_is_refused(
        self, uow_factory: UowFactory, column: str
    ) -> None:
        conv = await self.stored_conversation(uow_factory)
        await self.stored_messages(uow_factory, conv.id, 2)
        async with uow_factory() as uow:
            with pytest.raises(InvalidQuery):
                await uow.repository(MessageRepository).find_by(**{column: "x"})
            with pytest.raises(InvalidQuery):
                await uow.repository(MessageRepository).count({column: "x"})
            with pytest.raises(InvalidQuery):
                await uow.repository(ConversationRepository).count({"id": conv.id, column: 1})
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count() == 2
            assert await uow.repository(ConversationRepository).count() == 1

    async def test_json_metadata_is_not_filterable(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(InvalidQuery):
                await uow.repository(MessageRepository).find_by(metadata={})


class PaginationContract(_Base):
    async def collect(self, uow: UnitOfWork, limit: int) -> tuple[list[str], int]:
        seen: list[str] = []
        pages = 0
        cursor: str | None = None
        while True:
            page = await uow.repository(MessageRepository).list(limit=limit, cursor=cursor)
            pages += 1
            seen.extend(m.id for m in page.items)
            if page.next_cursor is None:
                return seen, pages
            cursor = page.next_cursor

    async def test_list_returns_every_row_once_in_id_order(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        msgs = await self.stored_messages(uow_factory, conv.id, 25)
        async with uow_factory() as uow:
            first = await uow.repository(MessageRepository).list(limit=10)
            assert [m.id for m in first.items] == [m.id for m in msgs[:10]]
            assert first.next_cursor is not None
            seen, pages = await self.collect(uow, 10)
        assert seen == [m.id for m in msgs]
        assert pages == 3

    async def test_list_with_filters_pages_only_matching_rows(
        self, uow_factory: UowFactory
    ) -> None:
        mine = [await self.stored_conversation(uow_factory, owner_id="owner-a",
                                               contact=f"whatsapp:+55119999900{i:02d}")
                for i in range(5)]
        await self.stored_conversation(uow_factory, owner_id="owner-b")
        async with uow_factory() as uow:
            first = await uow.repository(ConversationRepository).list(
                limit=3, filters={"owner_id": "owner-a"}
            )
            assert first.next_cursor is not None
            second = await uow.repository(ConversationRepository).list(
                limit=3, cursor=first.next_cursor, filters={"owner_id": "owner-a"}
            )
            with pytest.raises(InvalidQuery):
                await uow.repository(ConversationRepository).list(filters={"owner_id; --": "x"})
        assert [c.id for c in [*first.items, *second.items]] == [c.id for c in mine]
        assert second.next_cursor is None

    async def test_exact_multiple_of_limit_ends_without_an_empty_promise(
        self, uow_factory: UowFactory
    ) -> None:
        conv = await self.stored_conversation(uow_factory)
        await self.stored_messages(uow_factory, conv.id, 20)
        async with uow_factory() as uow:
            seen, pages = await self.collect(uow, 10)
            assert len(seen) == 20
            assert pages == 2

    async def test_inserts_between_pages_neither_skip_nor_repeat(
        self, uow_factory: UowFactory
    ) -> None:
        conv = await self.stored_conversation(uow_factory)
        # Ids of rows inserted later: some sort before the cursor, some after everything.
        early_ids = [ulid() for _ in range(5)]
        existing = await self.stored_messages(uow_factory, conv.id, 25)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            async with uow_factory() as uow:
                page = await uow.repository(MessageRepository).list(limit=10, cursor=cursor)
            seen.extend(m.id for m in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            async with uow_factory() as uow:
                await uow.repository(MessageRepository).create(message(conv.id, id=early_ids.pop()))
                await uow.repository(MessageRepository).create(message(conv.id))
                await uow.commit()
        assert len(seen) == len(set(seen))
        assert [i for i in seen if i in {m.id for m in existing}] == [m.id for m in existing]
        assert seen == sorted(seen)

    async def test_list_for_conversation_pages_oldest_first(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        other = await self.stored_conversation(uow_factory, contact="whatsapp:+5511999990002")
        mine = []
        for _ in range(7):
            mine += await self.stored_messages(uow_factory, conv.id, 1)
            await self.stored_messages(uow_factory, other.id, 1)
        async with uow_factory() as uow:
            page1 = await uow.repository(MessageRepository).list_for_conversation(conv.id, limit=4)
            assert page1.next_cursor is not None
            page2 = await uow.repository(MessageRepository).list_for_conversation(
                conv.id, limit=4, cursor=page1.next_cursor
            )
        assert list(page1.items) + list(page2.items) == mine
        assert page2.next_cursor is None

    @pytest.mark.parametrize("cursor", ["@@@@", "%%%", "gA"])
    async def test_malformed_cursor_is_refused(self, uow_factory: UowFactory, cursor: str) -> None:
        async with uow_factory() as uow:
            with pytest.raises(InvalidQuery):
                await uow.repository(MessageRepository).list(limit=10, cursor=cursor)

    async def test_non_positive_limit_is_refused(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(InvalidQuery):
                await uow.repository(ConversationRepository).list(limit=0)


class MessageRepositoryContract(_Base):
    async def test_add_if_new_inserts_once_per_provider_sid(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        first = message(conv.id, provider_sid="SM1")
        second = message(conv.id, provider_sid="SM1", body="redelivery")
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).add_if_new(first) is True
            assert await uow.repository(MessageRepository).add_if_new(second) is False
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count({"provider_sid": "SM1"}) == 1
            assert await uow.repository(MessageRepository).get_by_provider_sid("SM1") == first
            assert await uow.repository(MessageRepository).get_by_id(second.id) is None

    async def test_add_if_new_allows_one_reply_per_inbound(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        [inbound] = await self.stored_messages(uow_factory, conv.id, 1)
        replies = [
            message(
                conv.id,
                direction=Direction.OUTBOUND,
                status=DeliveryStatus.PENDING,
                provider_sid=None,
                reply_to_id=inbound.id,
                body=f"reply {i}",
            )
            for i in range(2)
        ]
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).add_if_new(replies[0]) is True
            assert await uow.repository(MessageRepository).add_if_new(replies[1]) is False
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).get_reply_to(inbound.id) == replies[0]
            assert await uow.repository(MessageRepository).get_reply_to(replies[0].id) is None

    async def test_create_duplicate_raises_duplicate_message(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        [stored] = await self.stored_messages(uow_factory, conv.id, 1)
        async with uow_factory() as uow:
            with pytest.raises(DuplicateMessage) as info:
                await uow.repository(MessageRepository).create(
                    message(conv.id, provider_sid=stored.provider_sid)
                )
            assert info.value.provider_sid == stored.provider_sid
            # The unit stays usable after the refused write.
            extra = message(conv.id)
            await uow.repository(MessageRepository).create(extra)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count() == 2

    async def test_message_for_a_missing_conversation_is_refused(
        self, uow_factory: UowFactory
    ) -> None:
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.repository(MessageRepository).create(message(ulid()))

    async def test_concurrent_add_if_new_inserts_exactly_once(
        self, uow_factory: UowFactory
    ) -> None:
        conv = await self.stored_conversation(uow_factory)
        candidates = [message(conv.id, provider_sid="SMrace", body=str(i)) for i in range(10)]

        async def deliver(candidate: Message) -> bool:
            async with uow_factory() as uow:
                inserted = await uow.repository(MessageRepository).add_if_new(candidate)
                await uow.commit()
                return inserted

        results = await asyncio.gather(*(deliver(c) for c in candidates))
        assert results.count(True) == 1
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count({"provider_sid": "SMrace"}) == 1
            winner = await uow.repository(MessageRepository).get_by_provider_sid("SMrace")
        assert winner == candidates[results.index(True)]

    async def test_compare_and_set_status(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        [out] = await self.stored_messages(
            uow_factory,
            conv.id,
            1,
            direction=Direction.OUTBOUND,
            status=DeliveryStatus.PENDING,
            provider_sid=None,
        )
        at = T0 + timedelta(minutes=1)
        async with uow_factory() as uow:
            assert not await uow.repository(MessageRepository).compare_and_set_status(
                out.id, {DeliveryStatus.SENDING}, DeliveryStatus.SENT, at
            )
            assert not await uow.repository(MessageRepository).compare_and_set_status(
                ulid(), {DeliveryStatus.PENDING}, DeliveryStatus.SENDING, at
            )
            assert not await uow.repository(MessageRepository).compare_and_set_status(
                out.id, set(), DeliveryStatus.SENDING, at
            )
            assert await uow.repository(MessageRepository).compare_and_set_status(
                out.id,
                [DeliveryStatus.QUEUED, DeliveryStatus.PENDING],
                DeliveryStatus.FAILED,
                at,
                provider_sid="SMout",
                error_code="63016",
            )
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.repository(MessageRepository).get_by_id(out.id)
        assert stored is not None
        assert (stored.status, stored.provider_sid, stored.error_code) == (
            DeliveryStatus.FAILED,
            "SMout",
            "63016",
        )
        assert stored.updated_at == at
        assert stored.version == out.version + 1
        assert stored.body == out.body

    async def test_compare_and_set_status_race_has_one_winner(
        self, uow_factory: UowFactory
    ) -> None:
        conv = await self.stored_conversation(uow_factory)
        [out] = await self.stored_messages(
            uow_factory,
            conv.id,
            1,
            direction=Direction.OUTBOUND,
            status=DeliveryStatus.PENDING,
            provider_sid=None,
        )

        async def claim() -> bool:
            async with uow_factory() as uow:
                won = await uow.repository(MessageRepository).compare_and_set_status(
                    out.id, {DeliveryStatus.PENDING}, DeliveryStatus.SENDING, T0
                )
                await uow.commit()
                return won

        results = await asyncio.gather(claim(), claim(), claim())
        assert sorted(results) == [False, False, True]
        async with uow_factory() as uow:
            stored = await uow.repository(MessageRepository).get_by_id(out.id)
        assert stored is not None
        assert stored.status is DeliveryStatus.SENDING
        assert stored.version == 2

    async def test_latest_for_conversation(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        other = await self.stored_conversation(uow_factory, contact="whatsapp:+5511999990002")
        msgs = await self.stored_messages(uow_factory, conv.id, 5)
        await self.stored_messages(uow_factory, other.id, 2)
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).latest_for_conversation(
                conv.id, 3
            ) == msgs[2:]
            assert await uow.repository(MessageRepository).latest_for_conversation(
                conv.id, 50
            ) == msgs
            assert await uow.repository(MessageRepository).latest_for_conversation(ulid(), 3) == []

    async def test_awaiting_reply(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        old, new = T0, T0 + timedelta(hours=1)
        waiting = await self.stored_messages(uow_factory, conv.id, 2, created_at=old)
        [answered] = await self.stored_messages(uow_factory, conv.id, 1, created_at=old)
        await self.stored_messages(uow_factory, conv.id, 1, created_at=new)
        outbound = dict(direction=Direction.OUTBOUND, status=DeliveryStatus.PENDING)
        await self.stored_messages(uow_factory, conv.id, 1, created_at=old, **outbound)
        await self.stored_messages(
            uow_factory, conv.id, 1, created_at=new, reply_to_id=answered.id, **outbound
        )
        cutoff = T0 + timedelta(minutes=30)
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).awaiting_reply(cutoff) == waiting
            assert await uow.repository(MessageRepository).awaiting_reply(
                cutoff, limit=1
            ) == waiting[:1]
            # Strictly before: a message created at the cutoff itself is not yet due.
            assert await uow.repository(MessageRepository).awaiting_reply(old) == []
            tz = timezone(timedelta(hours=-3))
            assert await uow.repository(MessageRepository).awaiting_reply(
                cutoff.astimezone(tz)
            ) == waiting
            # ``since`` is inclusive: messages stored before it are not read.
            assert await uow.repository(MessageRepository).awaiting_reply(
                cutoff, since=old.astimezone(tz)
            ) == waiting
            assert await uow.repository(MessageRepository).awaiting_reply(
                cutoff, since=old + timedelta(microseconds=1)
            ) == []


class ConversationRepositoryContract(_Base):
    async def test_get_open_ignores_closed_ones(self, uow_factory: UowFactory) -> None:
        closed = await self.stored_conversation(uow_factory, status=ConversationStatus.CLOSED)
        await self.stored_conversation(uow_factory, status=ConversationStatus.CLOSED)
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).get_open(OWNER, CONTACT) is None
        opened = await self.stored_conversation(uow_factory)
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).get_open(OWNER, CONTACT) == opened
            assert await uow.repository(ConversationRepository).get_open(
                OWNER, "whatsapp:+5511000000000"
            ) is None
            assert await uow.repository(ConversationRepository).get_open(
                "other-owner", CONTACT
            ) is None
            assert await uow.repository(ConversationRepository).get_by_id(closed.id) == closed

    async def test_add_open_or_get_returns_the_stored_open_one(
        self, uow_factory: UowFactory
    ) -> None:
        first = conversation()
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).add_open_or_get(first) == first
            assert await uow.repository(ConversationRepository).add_open_or_get(
                conversation()
            ) == first
            await uow.commit()
        async with uow_factory() as uow:
            await uow.repository(ConversationRepository).update(
                first.closed(T0 + timedelta(hours=1))
            )
            fresh = conversation()
            assert await uow.repository(ConversationRepository).add_open_or_get(fresh) == fresh
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).count(
                {"owner_id": OWNER, "contact": CONTACT}
            ) == 2

    async def test_handoff_fields_round_trip(self, uow_factory: UowFactory) -> None:
        stored = await self.stored_conversation(uow_factory)
        held = replace(stored.handed_off("agent-7", T0, T0 + timedelta(minutes=30)),
                       needs_person=True)
        async with uow_factory() as uow:
            held = await uow.repository(ConversationRepository).update(held)
            await uow.commit()
        async with uow_factory() as uow:
            read = await uow.repository(ConversationRepository).get_by_id(stored.id)
        assert read == held
        assert read is not None and read.held_by(T0) == "agent-7"
        assert read.held_until == T0 + timedelta(minutes=30) and read.needs_person
        closed = read.released(T0).closed(T0 + timedelta(hours=1), "idle")
        async with uow_factory() as uow:
            await uow.repository(ConversationRepository).update(closed)
            await uow.commit()
        async with uow_factory() as uow:
            again = await uow.repository(ConversationRepository).get_by_id(stored.id)
        assert again is not None and again.holder is None and again.held_since is None
        assert again.closed_reason == "idle" and not again.needs_person

    async def test_open_conversations_are_queryable_by_age(self, uow_factory: UowFactory) -> None:
        # What the lifecycle task asks: open ones whose last message is older than a cut.
        old = await self.stored_conversation(uow_factory)
        async with uow_factory() as uow:
            page = await uow.repository(ConversationRepository).query(
                [Condition("status", "eq", "open"),
                 Condition("last_message_at", "lt", T0 + timedelta(seconds=1))])
            none = await uow.repository(ConversationRepository).query(
                [Condition("status", "eq", "open"), Condition("last_message_at", "lt", T0)])
        assert [c.id for c in page.items] == [old.id]
        assert list(none.items) == []

    async def test_second_open_conversation_is_refused(self, uow_factory: UowFactory) -> None:
        await self.stored_conversation(uow_factory)
        async with uow_factory() as uow:
            with pytest.raises(ConcurrencyError):
                await uow.repository(ConversationRepository).create(conversation())
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).count() == 1

    async def test_concurrent_add_open_or_get_yields_one_conversation(
        self, uow_factory: UowFactory
    ) -> None:
        async def open_one() -> Conversation:
            async with uow_factory() as uow:
                stored = await uow.repository(ConversationRepository).add_open_or_get(
                    conversation()
                )
                await uow.commit()
                return stored

        results = await asyncio.gather(*(open_one() for _ in range(10)))
        assert len({c.id for c in results}) == 1
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).count({"status": "open"}) == 1


class UnitOfWorkContract(_Base):
    async def test_exception_inside_the_unit_leaves_nothing(self, uow_factory: UowFactory) -> None:
        conv = conversation()

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            async with uow_factory() as uow:
                await uow.repository(ConversationRepository).create(conv)
                await uow.repository(MessageRepository).add_if_new(message(conv.id))
                raise Boom
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).count() == 0
            assert await uow.repository(MessageRepository).count() == 0

    async def test_leaving_without_commit_rolls_back(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        async with uow_factory() as uow:
            await uow.repository(ConversationRepository).update(conv.closed(T0))
            await uow.repository(MessageRepository).create(message(conv.id))
        async with uow_factory() as uow:
            assert await uow.repository(ConversationRepository).get_by_id(conv.id) == conv
            assert await uow.repository(MessageRepository).count() == 0

    async def test_rollback_then_keep_working(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        kept = message(conv.id)
        async with uow_factory() as uow:
            await uow.repository(MessageRepository).create(message(conv.id))
            await uow.rollback()
            assert await uow.repository(MessageRepository).count() == 0
            assert await uow.repository(ConversationRepository).get_by_id(conv.id) == conv
            await uow.repository(MessageRepository).create(kept)
            await uow.commit()
            # After a commit the unit goes on in a new transaction.
            await uow.repository(MessageRepository).create(message(conv.id))
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).find_by() == [kept]

    async def test_unit_can_be_entered_again(self, uow_factory: UowFactory) -> None:
        uow = uow_factory()
        conv = conversation()
        async with uow:
            await uow.repository(ConversationRepository).create(conv)
            await uow.commit()
        async with uow:
            assert await uow.repository(ConversationRepository).get_by_id(conv.id) == conv
            await uow.repository(ConversationRepository).delete(conv.id)
        async with uow:
            assert await uow.repository(ConversationRepository).get_by_id(conv.id) == conv

    async def test_concurrent_read_modify_write_units_lose_no_update(
        self, uow_factory: UowFactory
    ) -> None:
        # Each unit reads then writes. A backend may serialize the units (SQLite) or let the
        # optimistic version refuse the stale ones (Postgres at READ COMMITTED); either way
        # no update is lost, and a refused unit that retries lands on top.
        conv = await self.stored_conversation(uow_factory)
        refused = 0

        async def touch(i: int) -> None:
            nonlocal refused
            while True:
                async with uow_factory() as uow:
                    current = await uow.repository(ConversationRepository).get_by_id(conv.id)
                    assert current is not None
                    await asyncio.sleep(0)
                    try:
                        await uow.repository(ConversationRepository).update(
                            current.touched(T0 + timedelta(seconds=i))
                        )
                    except ConcurrencyError:
                        refused += 1
                        continue
                    await uow.commit()
                    return

        await asyncio.gather(*(touch(i) for i in range(8)))
        async with uow_factory() as uow:
            stored = await uow.repository(ConversationRepository).get_by_id(conv.id)
        assert stored is not None
        assert stored.version == 1 + 8
        assert stored.last_message_at == T0 + timedelta(seconds=7)
        assert refused < 8 * 8


class RoundTripContract(_Base):
    async def test_text_json_time_and_ids_round_trip(self, uow_factory: UowFactory) -> None:
        minus_three = timezone(timedelta(hours=-3))
        local = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=minus_three)
        conv = await self.stored_conversation(uow_factory)
        metadata = {
            "twilio": {"ProfileName": "Zoë 🚀", "NumMedia": "1"},
            "media": [{"url": "https://example.test/a.jpg", "content_type": "image/jpeg"}],
            "nested": {"deep": {"list": [1, 2.5, None, True, "ção"]}, "empty": {}},
        }
        original = message(
            conv.id,
            body="Olá! 你好 👋🏽 — \"quoted\" 'single' \\ back\nnew line\ttab",
            metadata=metadata,
            created_at=local,
            updated_at=T0,
        )
        async with uow_factory() as uow:
            await uow.repository(MessageRepository).create(original)
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.repository(MessageRepository).get_by_id(original.id)
        assert stored is not None
        assert stored == original
        assert stored.id == original.id and len(stored.id) == 26
        assert stored.body == original.body
        assert stored.metadata == metadata
        assert stored.created_at.utcoffset() == timedelta(0)
        assert stored.created_at == local.astimezone(UTC)
        assert stored.created_at.replace(tzinfo=None) == datetime(2024, 3, 1, 2, 59, 59, 999999)
        assert stored.updated_at == T0 and stored.updated_at.utcoffset() == timedelta(0)

    async def test_naive_datetimes_are_refused(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        naive = datetime(2024, 1, 1, 12, 0)
        async with uow_factory() as uow:
            with pytest.raises(ValueError, match="naive"):
                await uow.repository(MessageRepository).create(message(conv.id, created_at=naive))
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count() == 0

    async def test_handed_out_entities_are_copies(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        original = message(conv.id, metadata={"a": {"b": [1]}})
        async with uow_factory() as uow:
            await uow.repository(MessageRepository).create(original)
            original.metadata["a"]["b"].append(2)  # the caller's object, after the write
            await uow.commit()
        async with uow_factory() as uow:
            fetched = await uow.repository(MessageRepository).get_by_id(original.id)
            assert fetched is not None
            fetched.metadata["a"]["b"].append(3)
            fetched.body = "changed"
            again = await uow.repository(MessageRepository).get_by_id(original.id)
        assert again is not None
        assert again.metadata == {"a": {"b": [1]}}
        assert again.body == "hello"


class QueryContract(_Base):
    """``query()``: operator conditions on declared columns, paged like ``list``."""

    async def ids(self, uow: UnitOfWork, *conditions: Condition, limit: int = 50) -> list[str]:
        page = await uow.repository(MessageRepository).query(list(conditions), limit=limit)
        return [m.id for m in page.items]

    async def fixture_rows(self, uow_factory: UowFactory) -> tuple[Conversation, list[Message]]:
        conv = await self.stored_conversation(uow_factory)
        msgs = [
            message(conv.id, body="olá mundo 👋", created_at=T0),
            message(conv.id, body="hello world", created_at=T0 + timedelta(minutes=1)),
            message(conv.id, body="Hello 50% off_now", created_at=T0 + timedelta(minutes=2),
                    status=DeliveryStatus.PENDING, direction=Direction.OUTBOUND,
                    provider_sid=None),
            message(conv.id, body="ação 🚀 done", created_at=T0 + timedelta(minutes=3),
                    error_code="63016"),
        ]
        async with uow_factory() as uow:
            for m in msgs:
                await uow.repository(MessageRepository).create(m)
            await uow.commit()
        return conv, msgs

    async def test_every_operator(self, uow_factory: UowFactory) -> None:
        _, m = await self.fixture_rows(uow_factory)
        t1 = T0 + timedelta(minutes=1)
        async with uow_factory() as uow:
            assert await self.ids(uow, Condition("body", "eq", "hello world")) == [m[1].id]
            assert await self.ids(uow, Condition("status", "eq", DeliveryStatus.PENDING)) == [
                m[2].id
            ]
            # A NULL column matches no comparison: m[0..2] have no error code.
            assert await self.ids(uow, Condition("error_code", "neq", "x")) == [m[3].id]
            assert await self.ids(uow, Condition("created_at", "gt", t1)) == [m[2].id, m[3].id]
            assert await self.ids(uow, Condition("created_at", "gte", t1)) == [
                m[1].id, m[2].id, m[3].id
            ]
            assert await self.ids(uow, Condition("created_at", "lt", t1)) == [m[0].id]
            assert await self.ids(uow, Condition("created_at", "lte", t1)) == [m[0].id, m[1].id]
            assert await self.ids(uow, Condition("id", "in", [m[3].id, m[0].id, ulid()])) == [
                m[0].id, m[3].id
            ]
            assert await self.ids(uow, Condition("direction", "in", {Direction.OUTBOUND})) == [
                m[2].id
            ]
            # Long lists too (SQLAlchemy binds up to 16 values one by one, then expands),
            # and the same shape with other values answers for those values.
            many = [ulid() for _ in range(30)]
            assert await self.ids(uow, Condition("id", "in", [*many, m[1].id])) == [m[1].id]
            assert await self.ids(uow, Condition("id", "in", [m[2].id, *many[:15]])) == [m[2].id]
            assert await self.ids(uow, Condition("id", "in", [m[3].id, *many[:15]])) == [m[3].id]
            assert await self.ids(uow, Condition("provider_sid", "is_null", True)) == [m[2].id]
            assert await self.ids(uow, Condition("error_code", "is_null", False)) == [m[3].id]
            assert await self.ids(uow, Condition("version", "eq", 1), limit=10) == [
                x.id for x in m
            ]

    async def test_eq_and_neq_with_none_mean_is_null(self, uow_factory: UowFactory) -> None:
        _, m = await self.fixture_rows(uow_factory)
        async with uow_factory() as uow:
            assert await self.ids(uow, Condition("provider_sid", "eq", None)) == [m[2].id]
            assert await self.ids(uow, Condition("error_code", "neq", None)) == [m[3].id]

    async def test_timestamps_compare_across_time_zones(self, uow_factory: UowFactory) -> None:
        _, m = await self.fixture_rows(uow_factory)
        tz = timezone(timedelta(hours=5, minutes=30))
        at = (T0 + timedelta(minutes=2)).astimezone(tz)
        async with uow_factory() as uow:
            assert await self.ids(uow, Condition("created_at", "eq", at)) == [m[2].id]
            assert await self.ids(uow, Condition("created_at", "gte", at)) == [m[2].id, m[3].id]

    async def test_like_is_case_sensitive_unicode_and_escapable(
        self, uow_factory: UowFactory
    ) -> None:
        _, m = await self.fixture_rows(uow_factory)
        async with uow_factory() as uow:
            assert await self.ids(uow, Condition("body", "like", "hello%")) == [m[1].id]
            assert await self.ids(uow, Condition("body", "like", "%👋")) == [m[0].id]
            assert await self.ids(uow, Condition("body", "like", "a_ão %")) == [m[3].id]
            assert await self.ids(uow, Condition("body", "like", "%ção _ %")) == [m[3].id]
            assert await self.ids(uow, Condition("body", "like", "%o%")) == [
                m[0].id, m[1].id, m[2].id, m[3].id
            ]
            # Escaped wildcards match themselves only.
            assert await self.ids(uow, Condition("body", "like", "%50\\% off\\_%")) == [m[2].id]
            assert await self.ids(uow, Condition("body", "like", "%50\\%off%")) == []
            assert await self.ids(uow, Condition("body", "like", "hello_world")) == [m[1].id]
            assert await self.ids(uow, Condition("body", "like", "hello\\_world")) == []
            assert await self.ids(uow, Condition("body", "like", "hello")) == []

    async def test_conditions_combine_with_and(self, uow_factory: UowFactory) -> None:
        conv, m = await self.fixture_rows(uow_factory)
        other = await self.stored_conversation(uow_factory, contact="whatsapp:+5511999990002")
        [elsewhere] = await self.stored_messages(uow_factory, other.id, 1, body="hello there")
        async with uow_factory() as uow:
            found = await self.ids(
                uow,
                Condition("body", "like", "%ello%"),
                Condition("conversation_id", "eq", conv.id),
                Condition("direction", "neq", Direction.OUTBOUND),
            )
            assert found == [m[1].id]
            assert await self.ids(uow, Condition("body", "like", "hello%")) == [
                m[1].id, elsewhere.id
            ]
            assert await self.ids(
                uow, Condition("created_at", "gt", T0), Condition("created_at", "lt", T0)
            ) == []
            assert await self.ids(uow) == [*(x.id for x in m), elsewhere.id]
            page = await uow.repository(ConversationRepository).query(
                [Condition("status", "eq", "open"), Condition("contact", "neq", CONTACT)]
            )
            assert [c.id for c in page.items] == [other.id]

    async def test_in_with_an_empty_collection_matches_nothing(
        self, uow_factory: UowFactory
    ) -> None:
        await self.fixture_rows(uow_factory)
        async with uow_factory() as uow:
            assert await self.ids(uow, Condition("id", "in", [])) == []
            assert await self.ids(uow, Condition("status", "in", ())) == []

    async def test_query_pages_with_a_cursor(self, uow_factory: UowFactory) -> None:
        conv = await self.stored_conversation(uow_factory)
        msgs = await self.stored_messages(uow_factory, conv.id, 7)
        await self.stored_messages(uow_factory, conv.id, 3, direction=Direction.OUTBOUND,
                                   status=DeliveryStatus.PENDING, provider_sid=None)
        inbound = [Condition("direction", "eq", Direction.INBOUND)]
        seen: list[str] = []
        cursor: str | None = None
        async with uow_factory() as uow:
            for _ in range(5):
                page = await uow.repository(MessageRepository).query(
                    inbound, limit=3, cursor=cursor
                )
                seen.extend(x.id for x in page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
                # A row inserted mid-listing with a smaller id is not returned later.
                await uow.repository(MessageRepository).create(message(conv.id, id=new_ulid(1)))
            with pytest.raises(InvalidQuery):
                await uow.repository(MessageRepository).query(inbound, limit=0)
            with pytest.raises(InvalidQuery):
                await uow.repository(MessageRepository).query(inbound, cursor="%%%")
        assert seen == [x.id for x in msgs]

    @pytest.mark.parametrize("column", [*INJECTION_NAMES, "metadata", "ID", "body "])
    async def test_unknown_column_is_refused(self, uow_factory: UowFactory, column: str) -> None:
        await self.fixture_rows(uow_factory)
        async with uow_factory() as uow:
            with pytest.raises(InvalidQuery, match="column"):
                await uow.repository(MessageRepository).query([Condition(column, "eq", "x")])
            with pytest.raises(InvalidQuery, match="column"):
                await uow.repository(ConversationRepository).query([Condition("id", "eq", "x"),
                                               Condition(column, "eq", "x")])
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count() == 4

    @pytest.mark.parametrize(
        "op", ["=", "==", "!=", "ilike", "EQ", "eq; DROP TABLE messages", "in) OR (1=1", ""]
    )
    async def test_unknown_operator_is_refused(self, uow_factory: UowFactory, op: str) -> None:
        await self.fixture_rows(uow_factory)
        async with uow_factory() as uow:
            with pytest.raises(InvalidQuery, match="operator"):
                await uow.repository(MessageRepository).query([Condition("body", op, "x")])
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count() == 4

    @pytest.mark.parametrize(
        "condition",
        [
            Condition("id", "in", "ABC"),
            Condition("id", "in", 3),
            Condition("provider_sid", "is_null", "yes"),
            Condition("created_at", "gt", None),
            Condition("body", "like", None),
            Condition("body", "like", 5),
        ],
    )
    async def test_malformed_values_are_refused(
        self, uow_factory: UowFactory, condition: Condition
    ) -> None:
        async with uow_factory() as uow:
            with pytest.raises(InvalidQuery):
                await uow.repository(MessageRepository).query([condition])

    async def test_values_are_never_interpreted_as_sql(self, uow_factory: UowFactory) -> None:
        _, m = await self.fixture_rows(uow_factory)
        hostile = ["x' OR '1'='1", "'; DROP TABLE messages; --", "\\'", "%' OR 1=1 --"]
        async with uow_factory() as uow:
            for value in hostile:
                assert await self.ids(uow, Condition("body", "eq", value)) == []
                assert await self.ids(uow, Condition("body", "like", value)) == []
            assert await self.ids(uow, Condition("body", "in", hostile)) == []
        async with uow_factory() as uow:
            assert await uow.repository(MessageRepository).count() == len(m)


class RepositoryContract(
    CrudContract,
    PaginationContract,
    QueryContract,
    MessageRepositoryContract,
    ConversationRepositoryContract,
    UnitOfWorkContract,
    RoundTripContract,
):
    """Everything above; subclass once per adapter and supply ``uow_factory``."""
