"""Property: whatever the interleaving of clock moves (forward, back to real time), sweeps,
attachment inserts (with a sweep between their write and their commit), upload ranges,
completions and deletes, every acknowledged attachment stays readable byte for byte, and after a
sweep no blob is left that nothing owns and no record names a blob that is gone (issue 14).

Runs on the test stack's stores (memory, or PostgreSQL + S3) and on SQLite + files.
``GRAPHATTACH_PROPERTY_EXAMPLES`` raises the number of examples for a long run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from graphattach.settings import Settings
from tests.api.attachment_support import file_payload
from tests.conftest import inprocess
from tests.helpers import Graph

EXAMPLES = int(os.environ.get("GRAPHATTACH_PROPERTY_EXAMPLES", "6"))
MiB = 1024 * 1024
SESSION_SIZE = 2 * MiB + 4096  # just above the 2 MiB minimum
CLOCK_MOVES = [60, 3600, 7200, 6 * 3600 + 60, 30 * 86400]


class _Harness:
    """The app on one store, driven from a private event loop (hypothesis rules are sync)."""

    def __init__(self, app_settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self._cm = inprocess(app_settings)
        self.graph: Graph = self.loop.run_until_complete(self._cm.__aenter__())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.graph.admin("DELETE", "/clock"))
        self.run(self._cm.__aexit__(None, None, None))
        self.loop.close()


class ClockAndSweeper(RuleBasedStateMachine):
    app_settings: Settings

    def __init__(self) -> None:
        super().__init__()
        self.h = _Harness(self.app_settings)
        self.graph = self.h.graph
        #: attachment path -> bytes, for every attachment answered 201
        self.acknowledged: dict[str, bytes] = {}
        #: message id -> its attachment paths
        self.messages: dict[str, list[str]] = {}
        #: upload URL -> (message id, data, bytes acknowledged)
        self.uploads: dict[str, tuple[str, bytes, int]] = {}
        self.rng = random.Random(0)

    def teardown(self) -> None:
        self.h.close()

    # helpers ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.h.run(self.graph.request(method, path, **kwargs))
        assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.h.run(self.graph.admin(method, path, **kwargs))
        assert response.status_code < 500, response.text[:300]
        return response

    def _sweep(self) -> dict[str, int]:
        response = self._admin("POST", "/sweep")
        assert response.status_code == 200
        report: dict[str, int] = response.json()
        return report

    # rules --------------------------------------------------------------------------------------

    @initialize()
    def a_message(self) -> None:
        created = self._call("POST", "/me/messages", json={"subject": "property"})
        assert created.status_code == 201
        self.messages[created.json()["id"]] = []

    @rule(seconds=st.sampled_from(CLOCK_MOVES))
    def move_the_clock_forward(self, seconds: int) -> None:
        assert self._admin("POST", "/clock", json={"advanceSeconds": seconds}).status_code == 200
        self.graph.forget_tokens()

    @rule()
    def clock_back_to_real_time(self) -> None:
        assert self._admin("DELETE", "/clock").status_code == 200
        self.graph.forget_tokens()

    @rule()
    def new_message(self) -> None:
        created = self._call("POST", "/me/messages", json={"subject": "property"})
        assert created.status_code == 201
        self.messages[created.json()["id"]] = []

    @rule()
    def sweep(self) -> None:
        self._sweep()
        self._no_orphan_and_nothing_missing()

    @rule(size=st.integers(0, 300_000), data=st.data())
    def insert_attachment(self, size: int, data: st.DataObject) -> None:
        self._insert(size, data, sweep_inside=False)

    @rule(size=st.integers(0, 300_000), data=st.data())
    def insert_attachment_with_a_sweep_between_write_and_commit(self, size: int, data: st.DataObject) -> None:
        self._insert(size, data, sweep_inside=True)

    def _insert(self, size: int, data: st.DataObject, *, sweep_inside: bool) -> None:
        message = data.draw(st.sampled_from(sorted(self.messages)))
        payload = self.rng.randbytes(size)
        blobs = self.graph.ctx.blobs
        real_write = blobs.write
        graph = self.graph

        async def write_then_sweep(key: str, chunks: AsyncIterable[bytes], **kwargs: Any) -> int:
            written = await real_write(key, chunks, **kwargs)
            if key.startswith("attachments/"):
                response = await graph.admin("POST", "/sweep")
                assert response.status_code == 200
            return written

        if sweep_inside:
            blobs.write = write_then_sweep
        try:
            response = self._call("POST", f"/me/messages/{message}/attachments", json=file_payload("p.bin", payload))
        finally:
            if sweep_inside:
                del blobs.write  # the instance attribute hid the method
        if response.status_code == 201:
            path = f"/me/messages/{message}/attachments/{response.json()['id']}"
            self.acknowledged[path] = payload
            self.messages[message].append(path)

    @rule(data=st.data())
    def start_upload(self, data: st.DataObject) -> None:
        message = data.draw(st.sampled_from(sorted(self.messages)))
        response = self._call(
            "POST",
            f"/me/messages/{message}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": SESSION_SIZE}},
        )
        if response.status_code == 201:
            self.uploads[response.json()["uploadUrl"]] = (message, self.rng.randbytes(SESSION_SIZE), 0)

    @rule(data=st.data(), length=st.sampled_from([1, 4096, MiB, SESSION_SIZE]))
    def put_range(self, data: st.DataObject, length: int) -> None:
        if not self.uploads:
            return
        url = data.draw(st.sampled_from(sorted(self.uploads)))
        message, payload, done = self.uploads[url]
        end = min(done + length, SESSION_SIZE)
        response = self.h.run(
            self.graph.http.put(
                url,
                content=payload[done:end],
                headers={"Content-Range": f"bytes {done}-{end - 1}/{SESSION_SIZE}"},
            )
        )
        assert response.status_code < 500, response.text[:300]
        if response.status_code == 200:
            self.uploads[url] = (message, payload, end)
            status = self.h.run(self.graph.http.get(url))
            assert status.status_code == 200
            assert status.json()["nextExpectedRanges"][0].split("-")[0] == str(end)  # tells the truth
        elif response.status_code == 201:
            del self.uploads[url]
            attachment_id = response.headers["Location"].rsplit("Attachments('", 1)[1].split("'")[0]
            path = f"/me/messages/{message}/attachments/{attachment_id}"
            self.acknowledged[path] = payload
            self.messages[message].append(path)
        else:
            # expired (clock moved), swept or the message is gone: the session is over
            del self.uploads[url]

    @rule(data=st.data())
    def delete_attachment(self, data: st.DataObject) -> None:
        if not self.acknowledged:
            return
        path = data.draw(st.sampled_from(sorted(self.acknowledged)))
        assert self._call("DELETE", path).status_code == 204
        del self.acknowledged[path]
        for paths in self.messages.values():
            if path in paths:
                paths.remove(path)

    @rule(data=st.data())
    def delete_message(self, data: st.DataObject) -> None:
        if len(self.messages) < 2:
            return
        message = data.draw(st.sampled_from(sorted(self.messages)))
        assert self._call("DELETE", f"/me/messages/{message}").status_code == 204
        for path in self.messages.pop(message):
            self.acknowledged.pop(path, None)

    # invariants ---------------------------------------------------------------------------------

    @invariant()
    def every_acknowledged_attachment_is_readable(self) -> None:
        for path, payload in self.acknowledged.items():
            response = self._call("GET", f"{path}/$value")
            assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:200]}"
            assert response.content == payload, path

    def _no_orphan_and_nothing_missing(self) -> None:
        ctx = self.graph.ctx
        keys = self.h.run(_all_keys(ctx.blobs))
        referenced = self.h.run(ctx.metadata.referenced_blob_keys(sorted(keys)))
        assert keys == referenced, f"orphans after a sweep: {sorted(keys - referenced)[:5]}"


async def _all_keys(blobs: Any) -> set[str]:
    return {key async for key in blobs.keys()}


@pytest.mark.parametrize("store", ["stack", "sqlite-files"])
def test_acknowledged_attachments_survive_any_interleaving(settings: Settings, tmp_path: Path, store: str) -> None:
    app_settings = settings
    if store == "sqlite-files":
        app_settings = dataclasses.replace(
            settings, in_memory=False, data_dir=tmp_path / "data", store=None, blobs=None
        )
    ClockAndSweeper.app_settings = dataclasses.replace(app_settings, sweep_interval=0)
    run_state_machine_as_test(
        ClockAndSweeper,
        settings=settings_for_run(),
    )


def settings_for_run() -> Any:
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
