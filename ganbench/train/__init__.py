"""The one adversarial training loop, with checkpoints, resume and EMA."""

from ganbench.train.loop import TrainConfig, TrainOutcome, train

__all__ = ["TrainConfig", "TrainOutcome", "train"]
