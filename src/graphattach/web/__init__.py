"""The web UI served by ``graphattach serve`` at ``/``: tenant, mailboxes, calendars, attachments,
live upload sessions and controls, as server-rendered pages over the services layer.

Every user-controlled string goes through Jinja2's autoescaping; message and event bodies are shown
only in an ``<iframe sandbox>`` whose document is served with ``Content-Security-Policy: sandbox``;
pages allow scripts and styles from this origin only (no inline script, no CDN, works offline).
"""
