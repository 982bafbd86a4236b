"""services/browse.py on every store: search (the store's prefilter or the scan), paging, trees."""

from __future__ import annotations

import pytest

from graphattach.composition import context_for
from graphattach.services import browse, mail
from graphattach.services.users import find_user
from graphattach.settings import Settings

ADELE = "adele@contoso.onmicrosoft.com"


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_filter_matches_subjects_people_and_bodies_exactly(store: str, tmp_path: object) -> None:
    settings = Settings(in_memory=True, sweep_interval=0)
    if store == "sqlite":
        settings = Settings(data_dir=tmp_path, sweep_interval=0)  # type: ignore[arg-type]
    async with context_for(settings) as ctx:
        user = await find_user(ctx, ADELE)
        assert user is not None
        inbox = await mail.well_known(ctx, user, "inbox")
        subjects = ["Invoice 7", 'Quote "special"', "Lunch", "Résumé for Ünal", "invoice 8"]
        for subject in subjects:
            await mail.create_message(
                ctx,
                user,
                inbox,
                {
                    "subject": subject,
                    "body": {"contentType": "text", "content": "see the subject"},
                    "toRecipients": [{"emailAddress": {"address": "megan@contoso.onmicrosoft.com", "name": "Megan"}}],
                },
            )

        async def found(query: str, **kwargs: int) -> list[str]:
            page = await browse.items_page(
                ctx, user, "message", inbox, skip=kwargs.get("skip", 0), top=kwargs.get("top", 50), query=query
            )
            return [i.data["subject"] for i in page.items]

        assert await found("INVOICE") == ["invoice 8", "Invoice 7"]  # newest first, any case
        assert await found('"special"') == ['Quote "special"']  # JSON-escaped text: matched by the scan
        assert await found("ünal") == ["Résumé for Ünal"]
        assert await found("megan") == subjects[::-1]  # a recipient's name
        assert await found("subject") == subjects[::-1]  # a body's text
        assert await found("toRecipients") == []  # a property name is not text
        page = await browse.items_page(ctx, user, "message", inbox, skip=1, top=1, query="invoice")
        assert [i.data["subject"] for i in page.items] == ["Invoice 7"] and page.total == 2 and not page.has_more


async def test_the_folder_tree_goes_down_every_level() -> None:
    async with context_for(Settings(in_memory=True, sweep_interval=0)) as ctx:
        user = await find_user(ctx, ADELE)
        assert user is not None
        inbox = await mail.well_known(ctx, user, "inbox")
        parent = inbox
        for depth in range(5):
            parent = await mail.create_folder(ctx, user, parent, f"level {depth}", is_hidden=False)
        tree = await browse.mail_folder_tree(ctx, user)
        levels = [(n.folder.display_name, n.depth) for n in tree if n.folder.display_name.startswith("level")]
        assert levels == [(f"level {d}", d + 1) for d in range(5)]
