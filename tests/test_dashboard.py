"""The Grafana dashboard only queries metrics arca exports (docs/grafana-dashboard.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import arca.metrics  # noqa: F401 - registers every arca metric

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana-dashboard.json"


def exported_series() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    return names


def test_every_dashboard_query_names_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert queries
    used = {name for query in queries for name in re.findall(r"\barca_[a-z_]+", query)}
    assert used
    assert used <= exported_series(), used - exported_series()
    labels = {"method", "route", "status", "driver", "operation", "error", "version", "le"}
    for query in queries:
        for grouping in re.findall(r"by \(([^)]*)\)", query):
            assert {g.strip() for g in grouping.split(",")} <= labels, query
