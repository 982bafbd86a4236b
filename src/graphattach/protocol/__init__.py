"""The wire format, sans I/O: paths, OData query options, Content-Range, error bodies and the JSON
shapes of every resource. This package is the only place JSON shapes live."""
