"""Progress of a multi-part send, kept in the message's ``metadata["parts"]``.

A long reply goes out as several Twilio messages. Each part is claimed (``in_flight``)
in one versioned write before it is sent and recorded with its sid after, so a job that
is delivered again resumes at the first unsent part and never sends one twice; a part
claimed but never recorded (the process died during the call) holds the message, since
Twilio may have taken it.

``claim`` names the job run that claimed the part in flight: a run whose claim write lost
its answer (the connection dropped on commit) can tell its own claim, made before any
provider call, from one made by another run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

KEY = "parts"


@dataclass(frozen=True, slots=True)
class PartProgress:
    total: int
    sids: tuple[str, ...] = ()
    in_flight: int | None = None
    claim: str | None = None

    @property
    def next_index(self) -> int:
        return len(self.sids)

    @property
    def done(self) -> bool:
        return len(self.sids) >= self.total

    def claimed(self, claim: str | None = None) -> PartProgress:
        return replace(self, in_flight=self.next_index, claim=claim)

    def claimed_by(self, claim: str) -> bool:
        return self.in_flight is not None and self.claim == claim

    def released(self) -> PartProgress:
        return replace(self, in_flight=None, claim=None)

    def recorded(self, sid: str) -> PartProgress:
        if sid in self.sids:  # the same record written again after a lost answer
            return self
        return replace(self, sids=(*self.sids, sid), in_flight=None, claim=None)

    def to_metadata(self) -> dict[str, Any]:
        return {"total": self.total, "sids": list(self.sids), "in_flight": self.in_flight,
                "claim": self.claim}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> PartProgress | None:
        raw = metadata.get(KEY)
        if not isinstance(raw, Mapping):
            return None
        total, sids, in_flight = raw.get("total"), raw.get("sids"), raw.get("in_flight")
        if not isinstance(total, int) or not isinstance(sids, list):
            return None
        if in_flight is not None and not isinstance(in_flight, int):
            return None
        claim = raw.get("claim")
        return cls(total, tuple(str(s) for s in sids), in_flight,
                   claim if isinstance(claim, str) else None)
