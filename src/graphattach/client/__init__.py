"""A client for attaching files of any size to Outlook messages and events, here or on Microsoft Graph."""
