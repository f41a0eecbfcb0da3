"""Wiring of the conformance suite: targets, parametrisation, reference xfails, reports.

Without --registry-url every test that takes the `registry` fixture runs against
each of --targets (default: arca on its filesystem and on its S3 driver, and the reference
registry, all started here).
With --registry-url the suite runs against that URL only, as target "external".
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conformance._auth import BearerAuth
from conformance._client import Registry
from conformance._registry import STARTERS, Targets
from conformance._report import CATEGORIES, Outcomes

HERE = Path(__file__).parent
OUTCOMES = pytest.StashKey[Outcomes]()
REFERENCE_XFAILS = pytest.StashKey[list[tuple[pytest.Item, str]]]()
DESELECTED = pytest.StashKey[int]()

MARKERS = (
    "category(name): the spec's workflow category (pull, push, discovery, management, clients)",
    "spec(*ids): the spec endpoint ids (end-N) or sections a test checks",
    "reference_xfail(reason): a v1.1 feature CNCF distribution 2.8 lacks (strict xfail there)",
    "selfcheck: tests of the suite itself (not run against --registry-url)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "OCI distribution conformance suite")
    group.addoption(
        "--registry-url",
        default=None,
        help="run the conformance suite against this registry (e.g. http://127.0.0.1:5000)",
    )
    group.addoption(
        "--targets",
        default="arca,arca-s3,arca-gcs,arca-azure,arca-auth,reference",
        help="without --registry-url: the registries to start and test"
        " (arca, arca-s3, arca-gcs, arca-azure, arca-auth: auth on, reference)",
    )
    group.addoption(
        "--username",
        default=None,
        help="with --registry-url: sign in as this user (the token flow, or Basic)",
    )
    group.addoption("--password", default=None, help="the password of --username")
    group.addoption(
        "--report-dir",
        default=None,
        help="write summary.md (one table per workflow category) into this directory",
    )
    group.addoption(
        "--max-manifest-size",
        type=int,
        default=4 * 1024 * 1024,
        help="largest manifest the registry accepts (a manifest one byte larger must get 413)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    config.stash[OUTCOMES] = Outcomes()
    config.stash[REFERENCE_XFAILS] = []
    config.stash[DESELECTED] = 0
    config.pluginmanager.register(_Report(config), "conformance-report")


def target_names(config: pytest.Config) -> list[str]:
    if config.getoption("registry_url"):
        return ["external"]
    names = [name.strip() for name in config.getoption("targets").split(",") if name.strip()]
    unknown = sorted(set(names) - set(STARTERS))
    if unknown or not names:
        raise pytest.UsageError(f"--targets: unknown {unknown}; choose from {sorted(STARTERS)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registry" in metafunc.fixturenames:
        names = target_names(metafunc.config)
        metafunc.parametrize("registry", names, indirect=True, scope="session", ids=names)


def _in_suite(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    external = bool(config.getoption("registry_url"))
    outcomes = config.stash[OUTCOMES]
    kept, deselected = [], []
    for item in items:
        if not _in_suite(item):
            kept.append(item)
            continue
        if external and item.get_closest_marker("selfcheck"):
            deselected.append(item)
            continue
        kept.append(item)
        category = item.get_closest_marker("category")
        spec = item.get_closest_marker("spec")
        if category is None or category.args[0] not in CATEGORIES or spec is None:
            raise pytest.UsageError(f"{item.nodeid}: every test needs a category and a spec id")
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("registry", "-") if callspec else "-"
        outcomes.add_item(item, category.args[0], ", ".join(spec.args), target)
        marker = item.get_closest_marker("reference_xfail")
        if marker is not None and target == "reference":
            reason = marker.kwargs.get("reason") or marker.args[0]
            item.add_marker(pytest.mark.xfail(reason=f"reference: {reason}", strict=True))
            config.stash[REFERENCE_XFAILS].append((item, reason))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        config.stash[DESELECTED] = len(deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def run_id() -> str:
    """Fresh for every session, so repository names never repeat across runs."""
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def targets(pytestconfig: pytest.Config) -> Iterator[Targets]:
    url = pytestconfig.getoption("registry_url")
    root = Path(tempfile.mkdtemp(prefix="conformance-"))
    username, password = pytestconfig.getoption("username"), pytestconfig.getoption("password")
    credentials = (username, password or "") if username else None
    manager = Targets(root, url.rstrip("/") if url else None, credentials)
    try:
        yield manager
    finally:
        manager.close()


@pytest.fixture(scope="session")
def registry(
    request: pytest.FixtureRequest, targets: Targets, run_id: str, pytestconfig: pytest.Config
) -> Iterator[Registry]:
    name: str = request.param
    url = targets.url(name)
    pytestconfig.stash[OUTCOMES].targets[name] = url
    timeout = httpx.Timeout(30.0, connect=5.0)
    headers = {"User-Agent": "arca-conformance"}
    credentials = targets.credentials(name)
    auth = BearerAuth(*credentials) if credentials else None
    with httpx.Client(timeout=timeout, follow_redirects=False, headers=headers, auth=auth) as http:
        yield Registry(
            name,
            url,
            http,
            run_id,
            max_manifest_size=pytestconfig.getoption("max_manifest_size"),
            credentials=credentials,
        )


@pytest.fixture(autouse=True)
def _target_alive(request: pytest.FixtureRequest, targets: Targets) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "registry" in callspec.params:
        targets.check_alive(callspec.params["registry"])


@pytest.fixture
def repo(registry: Registry, request: pytest.FixtureRequest) -> str:
    return registry.new_repo(request.node.originalname.removeprefix("test_"))


class _Report:
    """Collects outcomes, writes summary.md, lists the reference xfails at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.config.stash[OUTCOMES].record(report)

    def pytest_sessionfinish(self) -> None:
        report_dir = self.config.getoption("report_dir")
        if report_dir:
            self.config.stash[OUTCOMES].write_markdown(Path(report_dir) / "summary.md")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        xfails = self.config.stash[REFERENCE_XFAILS]
        outcomes = self.config.stash[OUTCOMES]
        if xfails:
            title = f"reference xfails: {len(xfails)} (CNCF distribution 2.8 lacks these)"
            terminalreporter.write_sep("=", title)
            for item, reason in xfails:
                entry = outcomes.entries.get(item.nodeid)
                outcome = entry.outcome if entry else "not run"
                terminalreporter.write_line(f"{outcome:8} {item.nodeid}: {reason}")
        deselected = self.config.stash[DESELECTED]
        if deselected:
            terminalreporter.write_line(
                f"conformance: {deselected} self-check tests not run (--registry-url given)"
            )
        report_dir = self.config.getoption("report_dir")
        if report_dir:
            summary = Path(report_dir) / "summary.md"
            terminalreporter.write_line(f"conformance summary: {summary}")
