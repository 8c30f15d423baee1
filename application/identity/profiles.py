"""Each owner's assistant settings, from the cached directory (no query per reply)."""

from __future__ import annotations

from application.identity.directory import StoredOwnerDirectory
from application.ports.assistant_profiles import AssistantProfile


class StoredAssistantProfiles:
    def __init__(self, directory: StoredOwnerDirectory) -> None:
        self._directory = directory

    async def for_owner(self, owner_id: str) -> AssistantProfile:
        snapshot = await self._directory.snapshot()
        owner = snapshot.owners.get(owner_id)
        if owner is None:
            return AssistantProfile()
        plan = snapshot.plan_of(owner_id)
        # A plan without the assistant silences it whatever the owner's own switch says.
        answers = owner.enabled and owner.answers and (plan is None or plan.assistant)
        return AssistantProfile(answers=answers, media=plan is None or plan.media,
                                system_prompt=owner.system_prompt,
                                model=owner.model, reply_language=owner.reply_language,
                                temperature=owner.temperature,
                                fallback_message=owner.fallback_message,
                                closing_message=owner.closing_message,
                                vision=owner.vision)
