"""Races: two replicas creating the signing key, two requests creating one robot."""

from __future__ import annotations

import asyncio

import httpx

from arca.app import create_app
from arca.auth.keys import KeyRing
from arca.storage.drivers.memory import MemoryDriver
from tests.auth.helpers import auth_settings, basic


def test_replicas_starting_together_end_up_with_one_signing_key():
    driver = MemoryDriver()
    rings = [KeyRing() for _ in range(8)]

    async def start_all() -> None:
        await asyncio.gather(*(ring.load_from_storage(driver) for ring in rings))

    asyncio.run(start_all())
    assert len({ring.signing.kid for ring in rings}) == 1


def test_two_requests_creating_one_robot_make_exactly_one(tmp_path):
    settings = auth_settings(tmp_path)
    driver = MemoryDriver()
    apps = [create_app(settings, driver), create_app(settings, driver)]  # two replicas
    body = {"name": "ci", "repositories": ["team/**"], "actions": ["pull"]}

    async def create(app) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://arca.test") as client:
            return await client.post("/api/v1/robots", json=body, headers=basic("admin"))

    async def race() -> list[httpx.Response]:
        return list(await asyncio.gather(*(create(app) for app in apps * 3)))

    answers = asyncio.run(race())
    assert sorted(a.status_code for a in answers) == [201, 400, 400, 400, 400, 400]
    [winner] = [a for a in answers if a.status_code == 201]
    secret = winner.json()["secret"]

    async def check() -> int:
        transport = httpx.ASGITransport(app=apps[1])
        async with httpx.AsyncClient(transport=transport, base_url="http://arca.test") as client:
            response = await client.get("/v2/", headers=basic("robot$ci", secret))
            return response.status_code

    assert asyncio.run(check()) == 200
