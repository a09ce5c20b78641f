"""Tests for lk_core.refs.resolve_ref."""

from __future__ import annotations

import pytest
from lk_core.errors import AmbiguousReferenceError, NotFoundError, UsageError
from lk_core.model import Container
from lk_core.refs import resolve_ref


def c(cid: str, name: str = "") -> Container:
    return Container(id=cid, image="/x.iso", name=name)


CONTAINERS = [
    c("abc12345", "web"),
    c("abd99999", "webserver"),
    c("f00dcafe", "abc12345-copy"),
    c("12345678", ""),
    c("cafe0001", "db"),
    c("0badf00d", "cafe"),
]


def test_exact_id() -> None:
    assert resolve_ref("12345678", CONTAINERS).id == "12345678"


def test_exact_id_wins_over_prefix_of_another_name() -> None:
    # "abc12345" is also a prefix of the name "abc12345-copy"
    assert resolve_ref("abc12345", CONTAINERS).id == "abc12345"


def test_exact_name_wins_over_prefix_of_another_name() -> None:
    # "web" is also a prefix of "webserver"
    assert resolve_ref("web", CONTAINERS).id == "abc12345"


def test_exact_name_wins_over_prefix_of_another_id() -> None:
    # "cafe" is the name of 0badf00d and a prefix of the ID cafe0001
    assert resolve_ref("cafe", CONTAINERS).id == "0badf00d"


def test_unique_prefix_of_id() -> None:
    assert resolve_ref("abd", CONTAINERS).id == "abd99999"
    assert resolve_ref("f00d", CONTAINERS).id == "f00dcafe"
    assert resolve_ref("1", CONTAINERS).id == "12345678"


def test_a_prefix_of_a_name_matches_nothing() -> None:
    # docker's rule: only IDs match by prefix ('lk rm -f w' must not remove 'web')
    with pytest.raises(NotFoundError, match="no such container: webs"):
        resolve_ref("webs", CONTAINERS)
    with pytest.raises(NotFoundError, match=r"no such container: w$"):
        resolve_ref("w", CONTAINERS)
    with pytest.raises(NotFoundError):
        resolve_ref("d", CONTAINERS)


def test_prefix_of_both_id_and_name_of_one_container_is_not_ambiguous() -> None:
    containers = [c("abc11111", "abcdef"), c("99999999", "zzz")]
    assert resolve_ref("abc", containers).id == "abc11111"


def test_surrounding_whitespace_is_ignored() -> None:
    assert resolve_ref("  web \n", CONTAINERS).id == "abc12345"


def test_ambiguous_prefix_lists_every_candidate() -> None:
    with pytest.raises(AmbiguousReferenceError) as excinfo:
        resolve_ref("ab", CONTAINERS)
    message = str(excinfo.value)
    # abc12345 and abd99999 by ID; f00dcafe's name "abc12345-copy" does not count
    for cid in ("abc12345", "abd99999"):
        assert cid in message
    assert "2 containers" in message
    assert "f00dcafe" not in message
    assert "12345678" not in message and "cafe0001" not in message
    assert "\n" not in message


def test_a_name_prefix_shared_by_two_names_is_not_found_not_ambiguous() -> None:
    containers = [c("11111111", "web-a"), c("22222222", "web-b")]
    with pytest.raises(NotFoundError, match="no such container: web-"):
        resolve_ref("web-", containers)


def test_unknown_reference() -> None:
    with pytest.raises(NotFoundError, match="no such container: nothing"):
        resolve_ref("nothing", CONTAINERS)
    with pytest.raises(NotFoundError):
        resolve_ref("web", [])


@pytest.mark.parametrize("ref", ["", "   ", "\t\n"])
def test_empty_reference_is_a_usage_error(ref: str) -> None:
    with pytest.raises(UsageError, match="empty"):
        resolve_ref(ref, CONTAINERS)


def test_empty_names_never_match() -> None:
    # a container without a name must not be matched by its empty name
    containers = [c("11111111", ""), c("22222222", "")]
    with pytest.raises(NotFoundError):
        resolve_ref("x", containers)
    assert resolve_ref("2", containers).id == "22222222"


def test_accepts_any_iterable() -> None:
    assert resolve_ref("db", iter(CONTAINERS)).id == "cafe0001"


@pytest.mark.parametrize("ref", ["abcd1234", "db"])
def test_the_same_id_or_name_on_two_hosts_is_ambiguous_and_names_the_hosts(ref: str) -> None:
    twins = [
        Container(id="abcd1234", image="i", name="db", host="lab"),
        Container(id="abcd1234", image="i", name="db", host="rack2"),
        Container(id="ffff0000", image="i", name="other"),
    ]
    with pytest.raises(AmbiguousReferenceError, match="on: lab, rack2"):
        resolve_ref(ref, twins)
