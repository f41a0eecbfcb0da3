"""Content discovery: tag listing with n/last/Link (end-8a, end-8b) and the catalog."""

from __future__ import annotations

import httpx
import pytest

from conformance._client import (
    Registry,
    describe,
    expect_error,
    expect_status,
    next_link,
    with_query,
)
from conformance._oci import Manifest, image_manifest

pytestmark = pytest.mark.category("discovery")

# Lower-case only, so ASCII order and case-insensitive order agree; the
# punctuation and digits make a naive or storage order show.
TAGS = ["zeta", "alpha", "v10", "v2", "1.0", "latest", "a-b", "a_b", "a.b", "beta9", "m", "0"]
MIXED_CASE = ["b", "B", "a", "C", "A1", "d"]


def tag_all(registry: Registry, repo: str, tags: list[str]) -> Manifest:
    manifest = image_manifest(layers=1, layer_size=16)
    registry.push_manifest(repo, manifest, tags[0])
    for tag in tags[1:]:
        expect_status(registry.put_manifest(repo, tag, manifest.body, manifest.media_type), 201)
    return manifest


def tag_page(response: httpx.Response, repo: str) -> list[str]:
    expect_status(response, 200)
    document = response.json()
    assert document.get("name") == repo, f"tags list names another repository: {document}"
    tags = document.get("tags")
    assert isinstance(tags, list), f"tags is not a list: {describe(response)}"
    return tags


@pytest.mark.spec("end-8a")
def test_tags_list_names_every_tag(registry: Registry, repo: str) -> None:
    tag_all(registry, repo, TAGS)
    tags = tag_page(registry.tags(repo), repo)
    assert sorted(tags) == sorted(TAGS), f"tags differ: {tags}"


@pytest.mark.spec("end-8a", "lexical order")
@pytest.mark.reference_xfail("tags come back in storage (directory) order, not sorted")
def test_tags_list_is_in_lexical_order(registry: Registry) -> None:
    repo = registry.new_repo("tags-lower")
    tag_all(registry, repo, TAGS)
    tags = tag_page(registry.tags(repo), repo)
    assert tags == sorted(TAGS), f"not in lexical order: {tags}"
    # With mixed case the spec allows ASCII order or case-insensitive order.
    mixed = registry.new_repo("tags-mixed")
    tag_all(registry, mixed, MIXED_CASE)
    tags = tag_page(registry.tags(mixed), mixed)
    assert tags in (sorted(MIXED_CASE), sorted(MIXED_CASE, key=str.lower)), tags


@pytest.mark.spec("end-8b")
@pytest.mark.reference_xfail("the n parameter of tags/list is ignored")
def test_tags_list_n_limits_the_page(registry: Registry, repo: str) -> None:
    tag_all(registry, repo, TAGS)
    full = tag_page(registry.tags(repo), repo)
    response = registry.tags(repo, n="3")
    page = tag_page(response, repo)
    # Exactly n, unless a Link announces that the rest comes on later pages.
    assert 0 < len(page) <= 3, page
    assert len(page) == 3 or next_link(response) is not None, page
    assert page == full[: len(page)], f"first page {page} is not the start of {full}"


@pytest.mark.spec("end-8b")
@pytest.mark.reference_xfail("the n and last parameters of tags/list are ignored")
def test_tags_list_last_starts_after_the_given_tag(registry: Registry, repo: str) -> None:
    tag_all(registry, repo, TAGS)
    full = tag_page(registry.tags(repo), repo)
    page = tag_page(registry.tags(repo, n="3", last=full[2]), repo)
    assert page == full[3:6], f"{page} after {full[2]} in {full}"
    rest = tag_page(registry.tags(repo, last=full[-3]), repo)
    assert rest == full[-2:], f"{rest} after {full[-3]} in {full}"
    assert tag_page(registry.tags(repo, last=full[-1]), repo) == []


@pytest.mark.spec("end-8b", "Link")
@pytest.mark.reference_xfail("the n parameter of tags/list is ignored (no pages, no Link)")
def test_tags_list_pagination_walks_every_tag_once(registry: Registry, repo: str) -> None:
    tag_all(registry, repo, TAGS)
    full = tag_page(registry.tags(repo), repo)
    collected: list[str] = []
    response = registry.tags(repo, n="2")
    for _ in range(len(TAGS) + 2):
        page = tag_page(response, repo)
        assert len(page) <= 2, f"page larger than n=2: {page}"
        collected += page
        link = next_link(response)
        if link is not None:
            assert "n=" in link, f"Link drops the page size: {link}"
            response = registry.get(link)
        elif page and len(collected) < len(full):
            response = registry.tags(repo, n="2", last=page[-1])
        else:
            break
    assert collected == full, f"pages {collected} do not add up to {full}"


@pytest.mark.spec("end-8b")
@pytest.mark.reference_xfail("the n parameter of tags/list is ignored")
def test_tags_list_n_zero_is_empty_without_link(registry: Registry, repo: str) -> None:
    tag_all(registry, repo, TAGS[:3])
    response = registry.tags(repo, n="0")
    assert tag_page(response, repo) == []
    assert "Link" not in response.headers, describe(response)


@pytest.mark.spec("end-8a")
def test_tags_list_of_unknown_repository_is_404(registry: Registry) -> None:
    repo = registry.new_repo("never-pushed")
    expect_error(registry.tags(repo), [404], ["NAME_UNKNOWN"])


def catalog_page(response: httpx.Response) -> list[str]:
    expect_status(response, 200)
    repositories = response.json().get("repositories")
    assert isinstance(repositories, list), describe(response)
    return repositories


@pytest.mark.spec("catalog (distribution extension)")
def test_catalog_lists_repositories_in_order(registry: Registry) -> None:
    base = registry.new_repo("catalog")
    names = [f"{base}/{leaf}" for leaf in ("zz", "aa", "mm")]
    for name in names:
        registry.push_manifest(name, image_manifest(layers=1, layer_size=16), "v1")
    page = catalog_page(registry.get(with_query("/v2/_catalog", n="20", last=base)))
    assert page[:3] == sorted(names), f"catalog after {base}: {page}"
    assert page == sorted(page), f"catalog page not in order: {page}"
    first = catalog_page(registry.get("/v2/_catalog"))
    assert first == sorted(first), f"catalog not in order: {first[:20]}"


@pytest.mark.spec("catalog (distribution extension)", "Link")
def test_catalog_pagination(registry: Registry) -> None:
    base = registry.new_repo("catalog-pages")
    names = sorted(f"{base}/{leaf}" for leaf in ("c", "a", "b"))
    for name in names:
        registry.push_manifest(name, image_manifest(layers=1, layer_size=16), "v1")
    response = registry.get(with_query("/v2/_catalog", n="2", last=base))
    first = catalog_page(response)
    assert first == names[:2], first
    link = next_link(response)
    assert link is not None, f"no Link although more repositories follow: {describe(response)}"
    second = catalog_page(registry.get(link))
    assert second[:1] == names[2:], f"next page {second} does not continue after {first}"
    assert len(second) <= 2
