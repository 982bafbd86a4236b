"""Helpers for testing apps against graphattach (a change-notification receiver)."""
