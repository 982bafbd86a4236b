"""The same app tested with unittest: one ``GraphServer`` for the class, a reset before each test.

python -m unittest test_save_attachments_unittest      # from examples/save_attachments
"""

from __future__ import annotations

import asyncio
import tempfile
import unittest
from pathlib import Path

from save_attachments import save_new_attachments

from graphattach.testing import ADELE, ALEX, GraphServer


class SaveAttachmentsTest(unittest.TestCase):
    graph: GraphServer

    @classmethod
    def setUpClass(cls) -> None:
        cls.graph = GraphServer().start()
        cls.addClassCleanup(cls.graph.stop)

    def setUp(self) -> None:
        self.graph.reset()
        self.target = Path(self.enterContext(tempfile.TemporaryDirectory()))

    def test_new_mail_only(self) -> None:
        self.graph.send_mail(sender=ALEX, to=ADELE, subject="old", attachments={"old.txt": b"old"})
        since = self.graph.clock.now()
        self.graph.clock.advance(60)
        self.graph.send_mail(sender=ALEX, to=ADELE, subject="new", attachments={"new.txt": b"new"})
        saved = asyncio.run(save_new_attachments(self.graph.msgraph_client(ADELE), ADELE, self.target, since))
        self.assertEqual([p.name for p in saved], ["new.txt"])
        self.assertEqual(saved[0].read_bytes(), b"new")

    def test_an_empty_inbox(self) -> None:
        since = self.graph.clock.now()
        saved = asyncio.run(save_new_attachments(self.graph.msgraph_client(ADELE), ADELE, self.target, since))
        self.assertEqual(saved, [])


if __name__ == "__main__":
    unittest.main()
