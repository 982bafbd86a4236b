"""graphattach: a self-hostable Microsoft Graph mailbox for Outlook attachments and upload sessions."""

__version__ = "0.1.0"
