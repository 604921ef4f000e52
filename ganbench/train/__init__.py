"""The one training loop (``ganbench.train.loop``): checkpoints, resume, EMA, learning-rate schedule and loss log for
every zoo model, through the model's own training setup and step."""

from ganbench.train.loop import CheckpointMismatch, TrainConfig, TrainOutcome, finished_run, train

__all__ = ["CheckpointMismatch", "TrainConfig", "TrainOutcome", "finished_run", "train"]
