"""The suite checked against itself: a suite that cannot fail is no suite.

The HTTP part of the suite runs in a subprocess against two broken registries
and must fail loudly; the helpers it trusts are tested on their own; the list
of reference xfails in docs/conformance.md must match the markers.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conformance._broken import Liar, corrupting_proxy, serve
from conformance._client import next_link, resolve_location, with_query
from conformance._registry import Targets

HERE = Path(__file__).parent
ROOT = HERE.parent
HTTP_MODULES = [
    "test_pull.py",
    "test_push_blobs.py",
    "test_push_manifests.py",
    "test_discovery_tags.py",
    "test_discovery_referrers.py",
    "test_management.py",
]

pytestmark = [pytest.mark.selfcheck, pytest.mark.category("selfcheck")]


@dataclass
class SuiteRun:
    returncode: int
    outcomes: dict[str, str]  # test name (with target id) -> passed/failed/error/skipped
    output: str

    def failed(self) -> set[str]:
        return {name for name, outcome in self.outcomes.items() if outcome in ("failed", "error")}


def run_suite(url: str, report_dir: Path) -> SuiteRun:
    junit = report_dir / "junit.xml"
    command = [
        sys.executable, "-m", "pytest", *(str(HERE / module) for module in HTTP_MODULES),
        "--registry-url", url, "--report-dir", str(report_dir), f"--junitxml={junit}",
        "-p", "no:cacheprovider", "-p", "no:asyncio", "-q", "--no-header", "--tb=no",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
        outcomes[case.attrib["name"]] = {"failure": "failed"}.get(outcome, outcome)
    return SuiteRun(result.returncode, outcomes, result.stdout[-4000:] + result.stderr[-2000:])


# Tests that any registry lying about content must fail, whatever else it does.
MUST_CATCH = [
    "test_get_blob_returns_exact_bytes",
    "test_get_manifest_by_tag_and_digest",
    "test_monolithic_post_then_put",
    "test_chunked_upload_with_content_range",
    "test_push_oci_manifest_by_tag",
    "test_manifest_is_stored_byte_for_byte",
    "test_sha512_blob",
]


def expect_loud_failure(run: SuiteRun, least_share: float) -> None:
    assert run.returncode == 1, f"the suite did not fail:\n{run.output}"
    total, failed = len(run.outcomes), run.failed()
    assert total >= 60, f"only {total} tests ran:\n{run.output}"
    assert len(failed) >= least_share * total, (
        f"only {len(failed)} of {total} tests failed; passed: "
        f"{sorted(n for n, o in run.outcomes.items() if o == 'passed')}"
    )
    for name in MUST_CATCH:
        assert f"{name}[external]" in failed, f"{name} passed against a broken registry"


@pytest.mark.spec("suite self-check")
@pytest.mark.slow
def test_suite_fails_against_a_registry_that_says_yes_to_everything(tmp_path: Path) -> None:
    with serve(Liar) as url:
        run = run_suite(url, tmp_path)
    expect_loud_failure(run, least_share=0.8)
    assert (tmp_path / "summary.md").is_file()


@pytest.mark.spec("suite self-check")
@pytest.mark.slow
def test_suite_fails_against_a_registry_serving_wrong_bytes_and_digests(
    tmp_path: Path, targets: Targets
) -> None:
    with corrupting_proxy(targets.url("reference")) as url:
        run = run_suite(url, tmp_path)
    expect_loud_failure(run, least_share=0.6)


def response(location: str | None, request_url: str, **headers: str) -> httpx.Response:
    if location is not None:
        headers["Location"] = location
    return httpx.Response(202, headers=headers, request=httpx.Request("POST", request_url))


@pytest.mark.spec("Location (relative and absolute)")
def test_locations_resolve_relative_and_absolute() -> None:
    base = "http://127.0.0.1:5000/v2/a/b/blobs/uploads/"
    cases = {
        "/v2/a/b/blobs/uploads/u1?_state=x%3D": "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=x%3D",
        "u2": "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u2",
        "http://127.0.0.1:5001/elsewhere/u3": "http://127.0.0.1:5001/elsewhere/u3",
        "//127.0.0.1:5002/u4": "http://127.0.0.1:5002/u4",
    }
    for location, expected in cases.items():
        assert resolve_location(response(location, base)) == expected
    with pytest.raises(AssertionError):
        resolve_location(response(None, base))


@pytest.mark.spec("Location (relative and absolute)")
def test_query_parameters_keep_an_opaque_query() -> None:
    assert with_query("/u?_state=a%3Db", digest="sha256:ab") == "/u?_state=a%3Db&digest=sha256:ab"
    assert with_query("/u", digest="sha256:ab") == "/u?digest=sha256:ab"
    assert with_query("/c", last="a/b c") == "/c?last=a/b%20c"


@pytest.mark.spec("Link")
def test_link_header_resolves_against_the_request() -> None:
    base = "http://127.0.0.1:5000/v2/r/tags/list?n=2"
    linked = response(None, base, Link='</v2/r/tags/list?n=2&last=b>; rel="next"')
    assert next_link(linked) == "http://127.0.0.1:5000/v2/r/tags/list?n=2&last=b"
    assert next_link(response(None, base)) is None


def marked_reference_xfails() -> set[str]:
    """Names of tests carrying reference_xfail, read from the test modules' source."""
    names = set()
    for path in sorted(HERE.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module_wide = any(
            isinstance(node, ast.Assign)
            and any(ast.unparse(target) == "pytestmark" for target in node.targets)
            and "reference_xfail" in ast.unparse(node.value)
            for node in tree.body
        )
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                decorators = " ".join(ast.unparse(d) for d in node.decorator_list)
                if module_wide or "reference_xfail" in decorators:
                    names.add(node.name)
    return names


@pytest.mark.spec("reference xfails")
def test_documented_reference_xfails_match_the_markers() -> None:
    docs = (ROOT / "docs" / "conformance.md").read_text()
    section = docs.split("## Reference xfails", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(test_[a-z0-9_]+)` \|", section, re.MULTILINE))
    assert documented == marked_reference_xfails()
