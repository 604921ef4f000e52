"""Result documents and the store they are written to."""

from ganbench.results.schema import SCHEMA_VERSION, Result, Score
from ganbench.results.store import read_result, read_results, write_result

__all__ = ["SCHEMA_VERSION", "Result", "Score", "read_result", "read_results", "write_result"]
