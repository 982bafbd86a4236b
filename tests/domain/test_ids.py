"""Minted values (``domain/ids.py``)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from graphattach.domain import ids


@given(st.binary(min_size=16, max_size=16))
def test_a_guid_is_the_version_4_uuid_of_its_random_bytes(raw: bytes) -> None:
    # The same text the standard library gives, so seeded runs mint the same request ids as before.
    assert ids.guid_of(raw) == str(uuid.UUID(bytes=raw, version=4))


def test_fresh_guids_are_version_4_and_distinct() -> None:
    minted = {ids.new_guid() for _ in range(1000)}
    assert len(minted) == 1000
    assert all(ids.is_guid(g) and uuid.UUID(g).version == 4 for g in minted)


def test_a_seeded_source_mints_the_same_guids_after_a_restart() -> None:
    source = ids.IdSource(seed=7)
    token = ids.bind(source)
    try:
        first = [ids.new_guid() for _ in range(3)]
        source.restart()
        assert [ids.new_guid() for _ in range(3)] == first
    finally:
        ids.unbind(token)
