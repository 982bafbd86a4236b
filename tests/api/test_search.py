"""``$search`` on messages (https://learn.microsoft.com/graph/search-query-parameter)."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote

from tests.api.test_messages import new_folder
from tests.helpers import ADELE, ALEX, MEGAN, Graph, assert_graph_error


def to(*addresses: str) -> list[dict]:
    return [{"emailAddress": {"address": a}} for a in addresses]


async def search(graph: Graph, path: str, kql: str, **kwargs: object) -> list[str]:
    """The subjects a search returns, following nextLinks."""
    link: str | None = f"{path}?$search={quote(kql)}&$select=subject"
    subjects: list[str] = []
    while link:
        response = await graph.get(link, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        body = response.json()
        subjects += [m["subject"] for m in body["value"]]
        link = body.get("@odata.nextLink")
        if link:
            assert "$skiptoken=" in link and "$skip=" not in link
    return subjects


async def test_kql_on_a_folder(graph: Graph) -> None:
    tag = uuid.uuid4().hex[:8]
    folder = await new_folder(graph)
    base = f"/me/mailFolders/{folder['id']}/messages"

    async def make(subject: str, body: str = "", attachment: str | None = None, **extra: object) -> None:
        payload: dict = {"subject": f"{subject} {tag}", "body": {"contentType": "html", "content": body}, **extra}
        if attachment:
            payload["attachments"] = [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": attachment,
                    "contentBytes": base64.b64encode(b"x").decode(),
                }
            ]
        assert (await graph.post(base, json=payload)).status_code == 201

    await make("Pizza party", "<p>Bring <b>drinks</b></p>", toRecipients=to(ALEX))
    await make("Quarterly report", "numbers inside", attachment="q3-figures.xlsx", toRecipients=to(MEGAN))
    await make("Lunch", "pizzas downtown", ccRecipients=to(ALEX), importance="high")
    await make("Budget", "nothing", attachment="budget.pdf")

    assert sorted(await search(graph, base, f'"pizza {tag}"')) == [f"Lunch {tag}", f"Pizza party {tag}"]
    assert await search(graph, base, f'"drinks {tag}"') == [f"Pizza party {tag}"]  # html body, tags ignored
    assert await search(graph, base, f'"subject:quarterly {tag}"') == [f"Quarterly report {tag}"]
    assert await search(graph, base, f"\"subject:'quarterly report' AND {tag}\"") == [f"Quarterly report {tag}"]
    assert sorted(await search(graph, base, f'"hasAttachments:true {tag}"')) == [
        f"Budget {tag}",
        f"Quarterly report {tag}",
    ]
    assert await search(graph, base, f'"attachment:figures {tag}"') == [f"Quarterly report {tag}"]
    assert await search(graph, base, f'"to:megan {tag}"') == [f"Quarterly report {tag}"]
    assert await search(graph, base, f'"to:{MEGAN}"') == [f"Quarterly report {tag}"]
    assert sorted(await search(graph, base, f'"(to:alex OR cc:alex) AND {tag}"')) == [
        f"Lunch {tag}",
        f"Pizza party {tag}",
    ]
    assert sorted(await search(graph, base, f'"recipients:alex {tag}"')) == [f"Lunch {tag}", f"Pizza party {tag}"]
    assert await search(graph, base, f'"importance:high {tag}"') == [f"Lunch {tag}"]
    assert sorted(await search(graph, base, f'"{tag} NOT hasAttachments:true"')) == [
        f"Lunch {tag}",
        f"Pizza party {tag}",
    ]
    assert await search(graph, base, f'"nomatch{tag}"') == []
    # paging by skip token
    assert len(await search(graph, base, f'"{tag}"')) == 4
    paged = await graph.get(f"{base}?$search=%22{tag}%22&$top=3")
    assert len(paged.json()["value"]) == 3 and "$skiptoken=" in paged.json()["@odata.nextLink"]


async def test_sender_across_the_mailbox_and_users_paths(graph: Graph) -> None:
    tag = uuid.uuid4().hex[:8]
    sent = await graph.post("/me/sendMail", json={"message": {"subject": f"Hello {tag}", "toRecipients": to(ALEX)}})
    assert sent.status_code == 202
    assert await search(graph, "/me/messages", f'"from:adele {tag}"', user=ALEX) == [f"Hello {tag}"]
    assert await search(graph, "/me/messages", f'"from:{ADELE} {tag}"', user=ALEX) == [f"Hello {tag}"]
    assert await search(graph, f"/users/{ALEX}/mailFolders/inbox/messages", f'"{tag}"', app=True) == [f"Hello {tag}"]
    # free text covers the sender
    assert await search(graph, "/me/mailFolders/inbox/messages", f'"adele {tag}"', user=ALEX) == [f"Hello {tag}"]


async def test_search_restrictions(graph: Graph) -> None:
    base = "/me/messages?$search=%22pizza%22"
    error = assert_graph_error(await graph.get(f"{base}&$orderby=subject"), 400, "ErrorInvalidUrlQuery")
    assert error["message"] == "The query parameter '$orderBy' is not supported with '$search'."
    assert_graph_error(await graph.get(f"{base}&$filter=isRead eq true"), 400, "ErrorInvalidUrlQuery")
    assert_graph_error(await graph.get(f"{base}&$skip=10"), 400, "ErrorInvalidUrlQuery")
    assert_graph_error(await graph.get("/me/messages?$search=%22size:1..5%22"), 400)
    assert_graph_error(await graph.get("/me/messages?$search=%22(pizza%22"), 400)
    assert_graph_error(await graph.get("/me/messages?$search=%22hasAttachments:maybe%22"), 400)
    assert_graph_error(await graph.get("/me/messages?$search=%22pizza%22&$skiptoken=bad"), 400)
    assert_graph_error(await graph.get("/me/events?$search=%22pizza%22"), 400)
