"""The pytest plugin, run by pytest's own ``pytester`` in fresh pytest processes, as a user's suite runs."""

from __future__ import annotations

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
