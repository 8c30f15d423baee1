"""Open-loop load: signed inbound webhooks at a fixed arrival rate, and what came of them.

Arrivals follow the schedule whatever the server does (an open loop: a slow server meets
more waiting requests, it does not slow the client down), and latency is measured from
each request's scheduled time, so a queue building up in the client counts too. Every
request has its own MessageSid and its own text, which the echo reply carries back to the
recorder: that is how a send is matched to its webhook. The client is aiohttp, which costs
a fraction of httpx's CPU per request: the load generator shares the machine with the
servers it measures.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
from twilio.request_validator import RequestValidator

from bench.delivery_servers import ACCOUNT_SID, AUTH_TOKEN, INBOUND_PATH

OUR_NUMBER = "whatsapp:+14155238886"
CONTACTS = 500


@dataclass
class RunResult:
    rate: float
    sent: int
    answered: dict[int, float] = field(default_factory=dict)  # index -> webhook latency
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # webhook scheduled -> send recorded
    lost: int = 0
    doubled: int = 0
    wall: float = 0.0

    def percentile(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def p50(self) -> float:
        return self.percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return self.percentile(self.latencies, 99)

    @property
    def intake_p50(self) -> float:
        return self.percentile(list(self.answered.values()), 50)


def signed_requests(base_url: str, n: int, tag: str) -> list[tuple[str, dict[str, str], str]]:
    """(text, form, signature) for ``n`` distinct messages from CONTACTS contacts."""
    validator = RequestValidator(AUTH_TOKEN)
    url = base_url + INBOUND_PATH
    out = []
    for i in range(n):
        sid = "SM" + uuid.uuid4().hex
        contact = f"whatsapp:+55119{i % CONTACTS:08d}"
        text = f"{tag}-{i}"
        form = {
            "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID,
            "From": contact, "To": OUR_NUMBER, "Body": text, "NumMedia": "0",
            "NumSegments": "1", "ProfileName": "Bench", "WaId": contact[-13:],
            "SmsStatus": "received", "ApiVersion": "2010-04-01",
        }
        out.append((text, form, validator.compute_signature(url, form)))
    return out


async def run_open_loop(base_url: str, recorder_url: str, rate: float, seconds: float,
                        drain_seconds: float) -> RunResult:
    """Post ``rate`` webhooks a second for ``seconds``, then wait for their sends."""
    n = max(1, int(rate * seconds))
    tag = uuid.uuid4().hex[:8]
    requests = signed_requests(base_url, n, tag)
    result = RunResult(rate=rate, sent=n)
    url = base_url + INBOUND_PATH
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        async with client.post(recorder_url + "/reset") as answer:
            await answer.read()
        scheduled: list[float] = []

        async def post(i: int, at: float) -> None:
            _, form, signature = requests[i]
            try:
                async with client.post(url, data=form,
                                       headers={"X-Twilio-Signature": signature}) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError):
                result.errors += 1
                return
            if status == 200:
                result.answered[i] = time.monotonic() - at
            else:
                result.errors += 1

        start = time.monotonic() + 0.05
        tasks = []
        for i in range(n):
            at = start + i / rate
            scheduled.append(at)
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(i, at)))
        await asyncio.gather(*tasks)
        deadline = time.monotonic() + drain_seconds
        index = {text: i for i, (text, _, _) in enumerate(requests)}
        while True:
            async with client.get(recorder_url + "/records") as answer:
                records = await answer.json()
            mine = [(body, t) for body, t in records if body.removeprefix("Echo: ") in index]
            if len(mine) >= len(result.answered) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    result.wall = time.monotonic() - start
    first: dict[int, float] = {}
    for body, t in mine:
        i = index[body.removeprefix("Echo: ")]
        if i in first:
            result.doubled += 1
            first[i] = min(first[i], t)
        else:
            first[i] = t
    result.latencies = [first[i] - scheduled[i] for i in first]
    result.lost = sum(1 for i in result.answered if i not in first)
    return result
