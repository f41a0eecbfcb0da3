"""The policy: longest matching glob wins, default deny, anonymous entries, closed actions."""

from __future__ import annotations

import pytest

from arca.auth.policy import ANONYMOUS, Policy, PolicyError, Principal, glob_matches

ALICE = Principal("alice")
BOB = Principal("bob", groups=frozenset({"ci"}))
CI_ROBOT = Principal("ci", kind="robot")

POLICY = Policy.parse(
    [
        {
            "repositories": ["**"],
            "users": ["admin"],
            "actions": ["pull", "push", "delete", "admin"],
        },
        {
            "repositories": ["team/**"],
            "users": ["alice"],
            "groups": ["ci"],
            "actions": ["pull", "push"],
        },
        {"repositories": ["team/secret/**"], "users": ["alice"], "actions": ["pull"]},
        {
            "repositories": ["public/*"],
            "anonymous": ["pull"],
            "users": ["alice"],
            "actions": ["push"],
        },
        {"repositories": ["builds/**"], "users": ["robot:ci"], "actions": ["pull", "push"]},
    ]
)


@pytest.mark.parametrize(
    ("glob", "name", "matches"),
    [
        ("team/**", "team/app", True),
        ("team/**", "team/a/b/c", True),
        ("team/**", "team", False),
        ("team/*", "team/a/b", False),
        ("team/*", "team/app", True),
        ("**", "anything/at/all", True),
        ("app-?", "app-1", True),
        ("app-?", "app-/", False),
        ("a.b", "aXb", False),
    ],
)
def test_globs_match_components_and_double_star_crosses_slashes(glob, name, matches):
    assert glob_matches(glob, name) is matches


def test_the_longest_matching_glob_wins_over_a_broader_grant():
    assert POLICY.allowed(ALICE, "team/app") == {"pull", "push"}
    # team/secret/** is longer: it alone applies, so alice loses push there
    assert POLICY.allowed(ALICE, "team/secret/keys") == {"pull"}
    # and the ci group, granted on team/**, gets nothing on the narrower glob
    assert POLICY.allowed(BOB, "team/secret/keys") == set()


def test_a_repository_no_glob_matches_grants_nothing():
    policy = Policy.parse([{"repositories": ["team/**"], "users": ["alice"], "actions": ["pull"]}])
    assert policy.allowed(ALICE, "other/app") == set()
    assert Policy().allowed(ALICE, "team/app") == set()


def test_anonymous_actions_apply_to_everyone_and_add_to_named_grants():
    assert POLICY.allowed(ANONYMOUS, "public/docs") == {"pull"}
    assert POLICY.allowed(ALICE, "public/docs") == {"pull", "push"}
    assert POLICY.allowed(ANONYMOUS, "team/app") == set()


def test_groups_and_robots_are_named_apart_from_users():
    assert POLICY.allowed(BOB, "team/app") == {"pull", "push"}
    assert POLICY.allowed(CI_ROBOT, "builds/nightly") == {"pull", "push"}
    # a user called "ci" is not the robot "ci"
    assert POLICY.allowed(Principal("ci"), "builds/nightly") == set()


def test_entries_of_the_same_glob_add_up():
    policy = Policy.parse(
        [
            {"repositories": ["x/**"], "users": ["alice"], "actions": ["pull"]},
            {"repositories": ["x/**"], "users": ["alice"], "actions": ["delete"]},
        ]
    )
    assert policy.allowed(ALICE, "x/y") == {"pull", "delete"}


@pytest.mark.parametrize(
    "entry",
    [
        {"repositories": ["x"], "users": ["a"], "actions": ["write"]},
        {"repositories": ["x"], "anonymous": ["*"]},
        {"repositories": [], "users": ["a"], "actions": ["pull"]},
        {"repositories": ["x"], "user": ["a"], "actions": ["pull"]},
        {"repositories": ["x"], "actions": ["pull"]},
        {"repositories": "x", "users": ["a"], "actions": ["pull"]},
    ],
    ids=["unknown-action", "wildcard-action", "no-globs", "typo-key", "nobody", "not-a-list"],
)
def test_a_policy_entry_arca_cannot_use_is_refused(entry):
    with pytest.raises(PolicyError):
        Policy.parse([entry])


def test_admins_hold_every_action_whatever_glob_wins():
    policy = Policy.parse(
        [{"repositories": ["team/**"], "users": ["alice"], "actions": ["pull"]}],
        admins=["root"],
        admin_groups=["ops"],
    )
    assert policy.allowed(Principal("root"), "team/app") == {"pull", "push", "delete", "admin"}
    assert policy.allowed(Principal("x", frozenset({"ops"})), "elsewhere") == {
        "pull",
        "push",
        "delete",
        "admin",
    }
    assert policy.allowed(Principal("root", kind="robot"), "team/app") == set()
