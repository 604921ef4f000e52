"""ganbench: an evaluation and model-zoo benchmarking suite for generative adversarial networks."""

__version__ = "0.1.0"
