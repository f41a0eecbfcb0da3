"""Outcomes per test, and the Markdown summary: one table per workflow category."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

CATEGORIES = {
    "pull": "Pull",
    "push": "Push",
    "discovery": "Content discovery",
    "management": "Content management",
    "clients": "Real clients (skopeo, oras-py)",
    "selfcheck": "Suite self-check",
}


@dataclass
class Entry:
    test: str
    target: str
    category: str
    spec: str
    outcome: str = "not run"
    reason: str = ""


@dataclass
class Outcomes:
    entries: dict[str, Entry] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)

    def add_item(self, item: pytest.Item, category: str, spec: str, target: str) -> None:
        name = getattr(item, "originalname", item.name)
        self.entries[item.nodeid] = Entry(name, target, category, spec)

    def record(self, report: pytest.TestReport) -> None:
        entry = self.entries.get(report.nodeid)
        if entry is None:
            return
        xfail_reason = getattr(report, "wasxfail", None)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.skipped and xfail_reason is not None:
                entry.outcome, entry.reason = "xfail", xfail_reason
            elif report.skipped:
                entry.outcome = "skipped"
                entry.reason = _skip_reason(report)
            elif report.passed and xfail_reason is not None:
                entry.outcome, entry.reason = "XPASS", xfail_reason
            elif report.passed:
                entry.outcome = "passed"
            elif report.when == "setup":
                entry.outcome = "error"
            elif str(report.longrepr).startswith("[XPASS(strict)]"):
                entry.outcome = "XPASS"  # an expected failure passed: the reason is stale
                entry.reason = str(report.longrepr)
            else:
                entry.outcome = "failed"
        elif report.when == "teardown" and report.failed:
            entry.outcome = "error"

    def write_markdown(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# OCI distribution conformance", ""]
        for target, url in self.targets.items():
            lines.append(f"- target `{target}`: {url}")
        totals: dict[str, int] = {}
        for entry in self.entries.values():
            totals[entry.outcome] = totals.get(entry.outcome, 0) + 1
        lines += ["", "Totals: " + ", ".join(f"{n} {o}" for o, n in sorted(totals.items())), ""]
        for category, title in CATEGORIES.items():
            entries = [e for e in self.entries.values() if e.category == category]
            if not entries:
                continue
            counts: dict[str, int] = {}
            for entry in entries:
                counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
            tally = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
            lines += [f"## {title}", "", f"{len(entries)} tests: {tally}", ""]
            lines += ["| Test | Target | Spec | Outcome |", "|---|---|---|---|"]
            for entry in entries:
                outcome = entry.outcome
                if entry.reason:
                    outcome += f" ({_cell(entry.reason)})"
                lines.append(f"| {entry.test} | {entry.target} | {entry.spec} | {outcome} |")
            lines.append("")
        path.write_text("\n".join(lines))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
