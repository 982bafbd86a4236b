"""The ``graphattach`` command."""
