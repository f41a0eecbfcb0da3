"""A query-result cache, as its users run it, through the Python client alone (no shell):
store 100 JSON results for 3 templates, list them with counts, take the latest result
of a template younger than a day, load and verify it, delete one run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import arca.client
from arca.client import ArcaClient
from arca.client.errors import NotFound
from tests.e2e.server import ArcaServer

TEMPLATES = ("at_risk", "churn", "revenue")
RESULTS = 100
REPOSITORY = "queries/results"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data").start()
    yield server
    server.stop()


def result_of(run: int) -> dict[str, object]:
    return {"run": run, "rows": [[run, run * 2]], "template": TEMPLATES[run % 3]}


def test_a_query_cache_through_the_python_client(server):
    now = datetime.now(UTC).replace(microsecond=0)
    with ArcaClient(server.url) as cache:
        pushed = {}
        for run in range(RESULTS):
            # Two hours apart, newest last: runs 88..99 are younger than a day.
            created = now - timedelta(hours=2 * (RESULTS - 1 - run))
            pushed[run] = cache.push_value(
                REPOSITORY,
                result_of(run),
                generate_tag=True,
                labels={"template_id": TEMPLATES[run % 3], "run_id": f"run-{run:03d}"},
                created=created,
            )
        counts = {
            template: sum(1 for _ in cache.iter_artifacts(REPOSITORY, {"template_id": template}))
            for template in TEMPLATES
        }
        assert counts == {"at_risk": 34, "churn": 33, "revenue": 33}

        fresh = cache.latest(REPOSITORY, {"template_id": "churn"}, since=timedelta(days=1))
        assert fresh.digest == pushed[97].digest  # 97 % 3 == 1: the newest churn run
        assert fresh.tags[0].startswith("churn-")
        young = list(
            cache.iter_artifacts(REPOSITORY, {"template_id": "churn"}, since=timedelta(days=1))
        )
        assert [a.labels["run_id"] for a in young] == ["run-097", "run-094", "run-091", "run-088"]

        assert cache.pull_value(REPOSITORY, fresh.digest) == result_of(97)
        assert cache.verify(REPOSITORY, fresh.digest).ok

        assert cache.delete_by_label(REPOSITORY, {"run_id": "run-097"}) == [pushed[97].digest]
        with pytest.raises(NotFound):
            cache.get(REPOSITORY, pushed[97].digest)
        after = cache.latest(REPOSITORY, {"template_id": "churn"}, since=timedelta(days=1))
        assert after.digest == pushed[94].digest
        assert sum(1 for _ in cache.iter_artifacts(REPOSITORY, {"template_id": "churn"})) == 32

    # The same cache, opened in-process on the server's directory (a notebook beside it).
    with arca.client.open(server.storage) as store:
        assert store.latest(REPOSITORY, {"template_id": "churn"}).digest == pushed[94].digest
        assert store.pull_value(REPOSITORY, pushed[1].tags[0]) == result_of(1)
