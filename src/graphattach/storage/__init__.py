"""Storage behind two small protocols: metadata (records) apart from bytes (blobs).

``interfaces`` defines them; ``memory``, ``sqlite`` and ``files`` implement them; ``conformance``
is the one test suite every implementation passes.
"""
