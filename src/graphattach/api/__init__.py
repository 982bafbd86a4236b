"""Thin Starlette routes: parse the request, call one service, serialise the answer."""
