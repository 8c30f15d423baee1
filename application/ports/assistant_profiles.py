"""Per-owner assistant settings: the seam between the assistant and whoever knows owners.

The reply path asks for an owner's profile; a deployment without an identity module
answers every owner with the one profile built from its settings. A field left ``None``
means "the deployment's setting".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AssistantProfile:
    answers: bool = True  # False: inbound messages are stored, no automatic reply
    # False: inbound media is kept as a reference only: not downloaded, transcribed or shown
    media: bool = True
    system_prompt: str | None = None
    model: str | None = None
    temperature: float | None = None
    reply_language: str | None = None
    fallback_message: str | None = None
    closing_message: str | None = None
    # True/False: the owner's model does/does not see images (it needs LLM_PROVIDER=openai)
    vision: bool | None = None


class AssistantProfiles(Protocol):
    async def for_owner(self, owner_id: str) -> AssistantProfile: ...


class SameForEveryOwner:
    """The deployment-wide profile, for every owner."""

    def __init__(self, profile: AssistantProfile | None = None) -> None:
        self._profile = profile or AssistantProfile()

    async def for_owner(self, owner_id: str) -> AssistantProfile:
        return self._profile
