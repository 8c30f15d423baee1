"""``Responder`` over an OpenAI-compatible Chat Completions API (``POST .../chat/completions``).

Plain HTTP through an injected ``httpx.AsyncClient``: any server speaking the protocol works
(OpenAI, a gateway, a local model server). Asking for a reply has no side effect, so every
transport failure and every 408/409/429/5xx is retryable (with the server's Retry-After);
400/401/403/404/422 are not. ``{profile_name}`` in the system prompt is the contact's
WhatsApp profile name.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from adapters.openai.errors import is_retryable, retry_after_seconds
from adapters.openai.prompt import profile_name, render_system_prompt
from application.ports.assistant_profiles import AssistantProfile
from application.ports.responder import Image, ResponderFailed
from domain.conversation import Conversation
from domain.message import Direction, Message

log = logging.getLogger("adapters.openai")

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant answering WhatsApp messages. Reply briefly, in the "
    "language of the user's last message."
)


class OpenAICompatibleResponder:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        model: str,
        api_key: str | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    ) -> None:
        if not model:
            raise ValueError("a model name is required")
        self._client = client
        self._url = f"{base_url.rstrip('/')}/chat/completions"
        self._model = model
        self._api_key = api_key
        self._system_prompt = system_prompt

    def __repr__(self) -> str:
        return f"OpenAICompatibleResponder(url={self._url!r}, model={self._model!r})"

    async def reply(
        self, conversation: Conversation, message: Message, history: Sequence[Message],
        profile: AssistantProfile | None = None, images: Sequence[Image] = (),
    ) -> str:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        owner = profile or AssistantProfile()
        body: dict[str, Any] = {
            "model": owner.model or self._model,
            "messages": self._messages(message, history, owner),
        }
        if images:
            chat = body["messages"]
            # The message's own turn (the last, when it has text) becomes text + images.
            text = message.said.strip()
            if text and chat[-1]["role"] == "user":
                chat.pop()
            chat.append(_user_turn_with_images(text, images))
        if owner.temperature is not None:
            body["temperature"] = owner.temperature
        try:
            response = await self._client.post(self._url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ResponderFailed(
                self._redact(f"LLM unreachable: {type(exc).__name__}: {exc}"),
                retryable=True, error_code=type(exc).__name__,
            ) from exc
        return self._content(response)

    def _messages(self, message: Message, history: Sequence[Message],
                  owner: AssistantProfile) -> list[dict[str, str]]:
        turns = list(history)
        if not turns or turns[-1].id != message.id:
            turns.append(message)  # the port promises history ends with it; do not rely on it
        template = owner.system_prompt or self._system_prompt
        system = render_system_prompt(template, profile_name(message, turns))
        if owner.reply_language:
            system += f"\nAlways reply in {owner.reply_language}."
        chat = [{"role": "system", "content": system}]
        for turn in turns:
            if turn.said.strip():
                role = "user" if turn.direction is Direction.INBOUND else "assistant"
                chat.append({"role": role, "content": turn.said})
        return chat

    def _content(self, response: httpx.Response) -> str:
        payload = _json_object(response) or {}
        if not response.is_success:
            error = payload.get("error")
            detail = error.get("message") if isinstance(error, dict) else None
            code = (error.get("code") or error.get("type")) if isinstance(error, dict) else None
            retryable = is_retryable(response.status_code)
            log.warning("llm request failed", extra={"status_code": response.status_code})
            raise ResponderFailed(
                self._redact(f"LLM answered {response.status_code}"
                             + (f": {detail}" if detail else "")),
                retryable=retryable,
                retry_after=retry_after_seconds(response) if retryable else None,
                error_code=str(code) if code else str(response.status_code),
            )
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str) or not content.strip():
            # A malformed or empty answer may be a transient glitch of the server.
            raise ResponderFailed("LLM answered without any message content", retryable=True,
                                  error_code="empty_reply")
        return content.strip()

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _user_turn_with_images(text: str, images: Sequence[Image]) -> dict[str, Any]:
    """A user turn as content parts: the text, then each image as a data URL."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for image in images:
        encoded = base64.b64encode(image.data).decode("ascii")
        parts.append({"type": "image_url",
                      "image_url": {"url": f"data:{image.content_type};base64,{encoded}"}})
    return {"role": "user", "content": parts}


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
