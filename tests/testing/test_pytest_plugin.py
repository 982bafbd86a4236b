"""The pytest plugin, run by pytest's own ``pytester`` in fresh pytest processes, as a user's suite runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest

from graphattach.testing import GraphServer

ISOLATION = """
import httpx

def _drafts(graph):
    token = graph.token()
    return httpx.get(graph.url + "/me/mailFolders/drafts/messages", headers={"Authorization": "Bearer " + token}).json()["value"]

def test_one(graph, graph_server):
    assert graph is graph_server
    assert _drafts(graph) == []
    token = graph.token()
    created = httpx.post(graph.url + "/me/messages", json={"subject": "one"}, headers={"Authorization": "Bearer " + token})
    assert created.status_code == 201
    graph.add_user("zoe@contoso.onmicrosoft.com")
    graph.clock.advance(hours=5)
    print("URL", graph.url)

def test_two(graph):
    assert graph.requests == []
    assert _drafts(graph) == []
    assert [u.upn for u in graph.users()] == [
        "adele@contoso.onmicrosoft.com", "alex@contoso.onmicrosoft.com", "megan@contoso.onmicrosoft.com"
    ]
    assert abs(graph.clock.now().timestamp() - __import__("time").time()) < 600
    print("URL", graph.url)
"""


def _urls(output: str) -> list[str]:
    return re.findall(r"URL (\S+)", output)


def test_the_plugin_is_registered_by_the_package() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins["graphattach"] == "graphattach.testing.pytest_plugin"


def test_graph_is_ready_and_reset_before_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ISOLATION)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    urls = _urls(result.stdout.str())
    assert len(urls) == 2 and urls[0] == urls[1]  # one server for the session


def test_markers_and_options_choose_the_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_default(graph):
            assert graph.profile == "lenient"   # --graphattach-profile
            assert graph.info()["seed"] == 11   # ini graphattach_seed
            print("URL", graph.url)

        @pytest.mark.graphattach(profile="outlook", frozen_clock="2030-01-01T00:00:00Z")
        def test_marked(graph):
            assert graph.profile == "outlook"
            assert graph.clock.now().year == 2030
            print("URL", graph.url)

        @pytest.mark.graphattach(profile="outlook", frozen_clock="2030-01-01T00:00:00Z")
        class TestClass:
            def test_in_class(self, graph):
                assert graph.clock.frozen
                print("URL", graph.url)

        @pytest.mark.graphattach("lenient")
        def test_bad_marker(graph):
            pass
        """
    )
    pytester.makeini("[pytest]\ngraphattach_seed = 11\n")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "--graphattach-profile", "lenient")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*keywords only*"])
    default, marked, in_class = _urls(result.stdout.str())
    assert default != marked and marked == in_class


SEEDED = """
import httpx

def test_ids(graph):
    client = graph.httpx_client()
    draft = client.post("me/messages", json={"subject": "seeded"})
    print("IDS", graph.user("adele@contoso.onmicrosoft.com").id, draft.json()["id"], draft.headers["request-id"])
"""


def test_a_seed_repeats_ids_from_run_to_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SEEDED)
    runs = []
    for _ in range(2):
        result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "--graphattach-seed", "42")
        result.assert_outcomes(passed=1)
        runs.append(re.findall(r"IDS (.+)", result.stdout.str()))
    assert runs[0] == runs[1] and len(runs[0]) == 1


@pytest.fixture(scope="module")
def external() -> Iterator[GraphServer]:
    with GraphServer(admin_key="k3y") as server:
        yield server


def test_an_external_server_by_option_or_environment(
    pytester: pytest.Pytester, external: GraphServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    external.reset()
    pytester.makepyfile(
        f"""
        import pytest

        def test_uses_it(graph):
            assert graph.external
            assert graph.tenant_id == {external.tenant_id!r}
            graph.send_mail(subject="from the suite")

        def test_reset_between(graph):
            assert graph.messages() == []

        @pytest.mark.graphattach(profile="lenient")
        def test_needs_another_profile(graph):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "--graphattach-url", external.url, "--graphattach-admin-key", "k3y"
    )
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*needs a graphattach server with profile='lenient'*"])
    # the last test's reset emptied the journal; what it did after is there
    assert [r.operation for r in external.requests] == ["admin.mailbox"]

    pytester.makepyfile(
        f"""
        def test_env(graph):
            assert graph.tenant_id == {external.tenant_id!r}
        """
    )
    monkeypatch.setenv("GRAPHATTACH_URL", external.root_url)
    refused = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "test_env")
    refused.assert_outcomes(errors=1)  # the admin API wants its key
    refused.stdout.fnmatch_lines(["*X-Graphattach-Admin-Key*"])
    monkeypatch.setenv("GRAPHATTACH_ADMIN_KEY", "k3y")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "test_env").assert_outcomes(passed=1)


def test_a_suite_without_graph_starts_no_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            assert "graphattach.testing.server" not in sys.modules
            assert "graphattach.api.app" not in sys.modules
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


FAULTS = """
import json

import httpx
import pytest

RULE = {"match": {"operation": "messages.list"}, "action": {"type": "status", "status": 503}}


def _list(graph):
    token = graph.token()
    return httpx.get(graph.url + "/me/messages", headers={"Authorization": "Bearer " + token}).status_code


@pytest.mark.graphattach(faults=[RULE])
def test_a_faulted(graph):
    assert _list(graph) == 503
    assert [(r["action"]["status"], r["fired"]) for r in graph.faults.list()] == [(503, 1)]
    print("URL", graph.url)


def test_b_gone_after_the_test(graph_server):
    # graph_server is not reset: only the fixture's teardown can have removed the rule
    assert graph_server.faults.list() == []
    assert _list(graph_server) == 200
    print("URL", graph_server.url)


@pytest.mark.graphattach(throttling="concurrency=2,requests=2/60")
def test_c_throttled(graph):
    assert [_list(graph) for _ in range(3)] == [200, 200, 429]
    assert graph.throttling.limits["requests"] == "2/60"


def test_d_not_throttled_after(graph_server):
    assert graph_server.throttling.limits is None
    assert [_list(graph_server) for _ in range(3)] == [200, 200, 200]


@pytest.mark.graphattach(faults="rules.json")
def test_e_a_rules_file_next_to_the_module(graph):
    assert _list(graph) == 429
    graph.faults.clear()  # the test may remove its rules itself


@pytest.mark.graphattach(faults={"match": {"operation": "messages.nope"}, "action": {"type": "drop"}})
def test_f_a_bad_rule(graph):
    pass


def test_g_clean(graph):
    assert graph.faults.list() == [] and graph.throttling.limits is None
    assert _list(graph) == 200
"""


def test_a_marker_installs_faults_and_throttling_for_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAULTS)
    rule = {"match": {"operation": "messages.list"}, "action": {"type": "status", "status": 429, "retryAfter": 3}}
    pytester.path.joinpath("rules.json").write_text(json.dumps({"rules": [rule]}))
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(["*Invalid fault rule: 'rules?0?.match.operation'*", "ERROR *::test_f_a_bad_rule*"])
    urls = _urls(result.stdout.str())
    assert len(urls) == 2 and urls[0] == urls[1]  # the same server: faults do not start another


OPTIONS = """
import httpx
import pytest


def _list(graph):
    token = graph.token()
    return httpx.get(graph.url + "/me/messages", headers={"Authorization": "Bearer " + token}).status_code


def test_every_test_starts_with_the_rules(graph):
    assert [_list(graph) for _ in range(3)] == [200, 503, 200]  # nth=2 counts from each test's start
    graph.faults.clear()


def test_and_again_after_a_test_cleared_them(graph):
    assert [_list(graph) for _ in range(3)] == [200, 503, 200]
    assert graph.throttling.limits["concurrency"] == 4  # outlook's


@pytest.mark.graphattach(throttling=None)
def test_a_marker_turns_throttling_off(graph):
    assert graph.throttling.limits is None


def test_it_is_back_after(graph_server):
    assert graph_server.throttling.limits["concurrency"] == 4
"""


def test_options_and_ini_keys_give_every_test_faults_and_throttling(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(OPTIONS)
    pytester.path.joinpath("rules.yaml").write_text(
        "rules:\n  - match: {operation: messages.list, nth: 2}\n    action: {type: status, status: 503}\n"
    )
    by_option = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--graphattach-faults", "rules.yaml", "--graphattach-throttling", "outlook"
    )
    by_option.assert_outcomes(passed=4)
    pytester.makeini("[pytest]\ngraphattach_faults = rules.yaml\ngraphattach_throttling = outlook\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)
    missing = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--graphattach-faults", "nowhere.json")
    missing.stderr.fnmatch_lines(["*graphattach faults: no such file:*nowhere.json*"])
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--graphattach-throttling", "requests=lots")
    bad.stderr.fnmatch_lines(["*graphattach throttling 'requests=lots': 'requests'*"])


def test_faults_and_throttling_on_an_external_server(pytester: pytest.Pytester, external: GraphServer) -> None:
    external.reset()
    pytester.makepyfile(FAULTS.replace('"rules.json"', '"rules.yaml"'))
    pytester.path.joinpath("rules.yaml").write_text(
        "- {match: {operation: messages.list}, action: {type: status, status: 429}}\n"
    )
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--graphattach-url", external.url, "--graphattach-admin-key", "k3y"
    )
    result.assert_outcomes(passed=6, errors=1)
    # what the session installed on the shared server is gone
    assert external.faults.list() == [] and external.throttling.limits is None

    pytester.makepyfile(OPTIONS)
    pytester.path.joinpath("rules.yaml").write_text(
        "rules:\n  - match: {operation: messages.list, nth: 2}\n    action: {type: status, status: 503}\n"
    )
    external.throttling.set("concurrency=3")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        *("--graphattach-url", external.url, "--graphattach-admin-key", "k3y"),
        *("--graphattach-faults", "rules.yaml", "--graphattach-throttling", "outlook"),
    )
    result.assert_outcomes(passed=4)
    assert external.throttling.limits is not None and external.throttling.limits["concurrency"] == 3  # given back
    external.throttling.off()
