"""Moved to :mod:`interp.jsonio` (one serialiser for the CLI and the report); kept importable."""

from interp.jsonio import dumps, to_jsonable, write_json

__all__ = ["to_jsonable", "dumps", "write_json"]
