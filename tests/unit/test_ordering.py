"""Which step waits for which, and display waves."""

from __future__ import annotations

import pytest

from lastgood.domain.ordering import waits_for, waves

SHOP = {"api": [], "worker": ["api-config"], "api-config": [], "db-credentials": []}


def test_a_dependency_waits_for_its_dependents() -> None:
    assert waits_for(SHOP, set(SHOP)) == {
        "api": [],
        "api-config": ["worker"],
        "db-credentials": [],
        "worker": [],
    }


def test_only_planned_components_appear() -> None:
    assert waits_for(SHOP, {"api-config"}) == {"api-config": []}
    assert waits_for(SHOP, {"worker", "api"}) == {"api": [], "worker": []}
    assert waits_for(SHOP, set()) == {}


def test_dependencies_are_followed_through_unplanned_components() -> None:
    chain = {"a": ["b"], "b": ["c"], "c": []}
    assert waits_for(chain, {"a", "c"}) == {"a": [], "c": ["a"]}
    assert waits_for(chain, {"a", "b", "c"}) == {"a": [], "b": ["a"], "c": ["b"]}
    longer = {"a": ["b"], "b": ["c"], "c": ["d"], "d": []}
    assert waits_for(longer, {"a", "d"}) == {"a": [], "d": ["a"]}


def test_a_planned_dependent_stops_the_walk() -> None:
    # d waits only for its nearest planned dependents; a is reached through c's wait.
    chain = {"a": ["b"], "b": ["c"], "c": ["d"], "d": []}
    assert waits_for(chain, {"a", "c", "d"}) == {"a": [], "c": ["a"], "d": ["c"]}


def test_diamonds_and_several_dependents() -> None:
    graph = {"web": ["api", "cache"], "api": ["db"], "cache": ["db"], "db": [], "batch": ["db"]}
    assert waits_for(graph, set(graph)) == {
        "api": ["web"],
        "batch": [],
        "cache": ["web"],
        "db": ["api", "batch", "cache"],
        "web": [],
    }
    assert waits_for(graph, {"web", "db"}) == {"db": ["web"], "web": []}


def test_unknown_dependencies_and_cycles_do_not_loop_forever() -> None:
    assert waits_for({"a": ["ghost"]}, {"a", "ghost"}) == {"a": [], "ghost": ["a"]}
    cyclic = {"a": ["b"], "b": ["a"]}
    assert waits_for(cyclic, {"a", "b"}) == {"a": ["b"], "b": ["a"]}
    # The loader rejects cycles; waits_for only has to terminate on one.
    assert "a" in waits_for({"a": ["b"], "b": ["c"], "c": ["b"]}, {"a", "c"})["c"]


def test_waves_group_steps_that_can_run_together() -> None:
    assert waves(waits_for(SHOP, set(SHOP))) == [["api", "db-credentials", "worker"], ["api-config"]]
    graph = {"web": ["api", "cache"], "api": ["db"], "cache": ["db"], "db": []}
    assert waves(waits_for(graph, set(graph))) == [["web"], ["api", "cache"], ["db"]]
    assert waves({}) == []


def test_waves_ignore_waits_on_steps_outside_the_plan() -> None:
    assert waves({"a": ["gone"], "b": ["a"]}) == [["a"], ["b"]]


def test_waves_reject_a_cycle() -> None:
    with pytest.raises(ValueError, match=r"cycle among \['a', 'b'\]"):
        waves({"a": ["b"], "b": ["a"], "c": []})
