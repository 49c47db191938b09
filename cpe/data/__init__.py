"""Data layer: records, loaders for JSONL/parquet/HF datasets, and the bundled data set."""

from cpe.data.alpaca_eval import AlpacaItem, alpaca_records, load_alpaca_eval, write_alpaca_eval
from cpe.data.bundled import bundled_dir, load_bundled
from cpe.data.cursor import PromptCursor
from cpe.data.errors import DataError, DataValidationError
from cpe.data.loaders import load_records
from cpe.data.persona_feedback import load_persona_feedback, load_persona_feedback_dir
from cpe.data.persona_mem import (
    PersonaMemItem,
    accuracy_by_type,
    load_persona_mem,
    read_answer_letter,
)
from cpe.data.personas import load_personas
from cpe.data.records import Record

__all__ = [
    "AlpacaItem",
    "DataError",
    "DataValidationError",
    "PersonaMemItem",
    "PromptCursor",
    "Record",
    "accuracy_by_type",
    "alpaca_records",
    "bundled_dir",
    "load_alpaca_eval",
    "load_bundled",
    "load_persona_feedback",
    "load_persona_feedback_dir",
    "load_persona_mem",
    "load_personas",
    "load_records",
    "read_answer_letter",
    "write_alpaca_eval",
]
