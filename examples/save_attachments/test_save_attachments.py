"""The sample app's test suite: the ``graph`` fixture of graphattach's pytest plugin, msgraph-sdk
and the server's clock. No server is started by hand; each test starts from the demo tenant.

    pytest examples/save_attachments                       # an in-process server
    pytest examples/save_attachments --graphattach-url http://127.0.0.1:8765   # a running one
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from save_attachments import safe_name, save_new_attachments

ADELE = "adele@contoso.onmicrosoft.com"
ALEX = "alex@contoso.onmicrosoft.com"


def test_saves_the_attachments_of_new_inbox_mail(graph, tmp_path: Path) -> None:
    report = b"%PDF-1.7 quarterly figures"
    graph.send_mail(sender=ALEX, to=ADELE, subject="Q3", attachments={"report.pdf": report, "notes.txt": b"see p. 2"})
    since = graph.clock.now()
    graph.clock.advance(minutes=5)  # mail that arrives after `since`
    graph.send_mail(sender=ALEX, to=ADELE, subject="Q4", attachments={"report.pdf": b"%PDF-1.7 Q4"})

    client = graph.msgraph_client(ADELE)
    saved = asyncio.run(save_new_attachments(client, ADELE, tmp_path, since))

    assert [p.name for p in saved] == ["report.pdf"]
    assert saved[0].read_bytes() == b"%PDF-1.7 Q4"
    # the file is the attachment the server holds, byte for byte
    (q4,) = [m for m in graph.messages(ADELE, folder="inbox") if m.subject == "Q4"]
    assert hashlib.sha256(saved[0].read_bytes()).hexdigest() == q4.attachment("report.pdf").sha256


def test_everything_since_the_start_and_name_collisions(graph, tmp_path: Path) -> None:
    since = graph.clock.now()
    graph.clock.advance(1)
    graph.send_mail(sender=ALEX, to=ADELE, subject="one", attachments={"a.txt": b"1"})
    graph.clock.advance(1)
    graph.send_mail(sender=ALEX, to=ADELE, subject="two", attachments={"a.txt": b"2", "../../etc/passwd": b"x"})
    graph.send_mail(sender=ALEX, to=ADELE, subject="no attachments")

    saved = asyncio.run(save_new_attachments(graph.msgraph_client(ADELE), ADELE, tmp_path, since))

    assert sorted(p.name for p in saved) == ["a (1).txt", "a.txt", "passwd"]
    assert all(p.parent == tmp_path for p in saved)
    assert (tmp_path / "a.txt").read_bytes() == b"1" and (tmp_path / "a (1).txt").read_bytes() == b"2"


def test_it_only_reads_mail(graph, tmp_path: Path) -> None:
    graph.send_mail(sender=ALEX, to=ADELE, subject="x", attachments={"x.bin": b"x"})
    since = graph.clock.now()
    graph.clock.advance(1)
    graph.send_mail(sender=ALEX, to=ADELE, subject="y", attachments={"y.bin": b"y"})
    # a token with Mail.Read only is enough...
    client = graph.msgraph_client(ADELE, scopes=["Mail.Read"])
    assert [p.name for p in asyncio.run(save_new_attachments(client, ADELE, tmp_path, since))] == ["y.bin"]
    # ...and the journal agrees: the least privileged permission that covers what the app did
    report = graph.permissions_report()
    app = [g for g in report["value"] if g["caller"] == "delegated" and "Mail.Read" in g["minimalPermissions"]]
    assert app and app[0]["minimalPermissions"] == ["Mail.Read"]


def test_safe_names() -> None:
    assert safe_name("report.pdf") == "report.pdf"
    assert safe_name("../../x") == "x"
    assert safe_name("C:\\Users\\me\\notes?.txt") == "notes_.txt"
    assert safe_name("...") == "attachment"
