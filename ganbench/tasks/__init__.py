"""Task kinds: each a registered ``ganbench.tasks.base.Task`` that owns how outputs are drawn from a model, its metric
family, its reference rows and its main check. Importing this package registers the built-in ones; a new kind is one
module that subclasses ``Task`` and calls ``register_task``."""

from ganbench.tasks import (class_conditional, likelihood, super_resolution, text_to_image,  # noqa: F401
                            translation, unconditional)
from ganbench.tasks.base import (BICUBIC, IDENTITY, REAL, REFERENCE_ROWS, UNTRAINED, Check, ReferenceRow, SampleSet,
                                 Task, TaskData, check_sample_count, get_task, reference_row, register_task)

__all__ = ["BICUBIC", "Check", "IDENTITY", "REAL", "REFERENCE_ROWS", "ReferenceRow", "SampleSet", "Task", "TaskData",
           "UNTRAINED", "check_sample_count", "get_task", "reference_row", "register_task"]
