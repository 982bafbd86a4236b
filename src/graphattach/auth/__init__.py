"""Tokens (minting and verifying JWTs), principals and the permission table."""
