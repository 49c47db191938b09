"""Data layer: records, loaders for JSONL/parquet/HF datasets, and the bundled data set."""

from cpe.data.bundled import bundled_dir, load_bundled
from cpe.data.cursor import PromptCursor
from cpe.data.errors import DataError, DataValidationError
from cpe.data.loaders import load_records
from cpe.data.persona_feedback import load_persona_feedback
from cpe.data.personas import load_personas
from cpe.data.records import Record

__all__ = [
    "DataError",
    "DataValidationError",
    "PromptCursor",
    "Record",
    "bundled_dir",
    "load_bundled",
    "load_persona_feedback",
    "load_personas",
    "load_records",
]
