"""The extractor contract: ``ExtractorSpec`` says how an extractor is built, what it takes and which layers it provides;
every extractor module (``mnist_cnn``, ``foundation``, ``inception``) registers specs of this type.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_fidelity
from torch import nn

from ganbench.paths import zoo_dir
from ganbench.results.store import file_sha256
from ganbench.weights import WeightsMismatch


@dataclass(frozen=True)
class ExtractorSpec:
    """How to build an extractor and what it provides."""

    name: str  # ganbench registry name
    input_kind: str  # "images" or "points"
    feature_layer: str  # features for FID, KID, precision/recall
    logits_layer: str | None  # class logits for the Inception Score, if the extractor has them
    input_resize: str  # how inputs are brought to the network's size
    card: str | None = None  # zoo/extractors/<card>.toml naming the weights file and its sha256
    fidelity_name: str | None = None  # name in torch-fidelity's registry

    def weights(self) -> tuple[Path | None, str | None]:
        """(weights path, sha256) after checking the file against its card."""
        if self.card is None:
            return None, None
        card_path = zoo_dir() / "extractors" / f"{self.card}.toml"
        if not card_path.exists():
            raise FileNotFoundError(f"extractor card {str(card_path)!r} is missing; train it with "
                                    f"`ganbench train-extractor {self.name}` or set GANBENCH_ZOO")
        card = tomllib.loads(card_path.read_text())
        path = card_path.parent / card["file"]
        if not path.exists():
            raise FileNotFoundError(f"extractor weights {str(path)!r} (named by {str(card_path)!r}) are missing; "
                                    f"recreate them with `{card.get('command', 'ganbench train-extractor ' + self.name)}`")
        actual = file_sha256(path)
        if actual != card["sha256"]:
            raise WeightsMismatch(f"extractor weights {str(path)!r} have sha256 {actual}, "
                                  f"but {str(card_path)!r} expects {card['sha256']}")
        return path, actual

    def layers(self) -> list[str]:
        return [self.feature_layer] + ([self.logits_layer] if self.logits_layer else [])

    def create(self) -> nn.Module:
        """The extractor network in eval mode, built through torch-fidelity's registry."""
        if self.input_kind == "points":
            return PointsIdentity()
        path, _ = self.weights()
        return torch_fidelity.utils.create_feature_extractor(
            self.fidelity_name, self.layers(), cuda=False, feature_extractor_weights_path=str(path), verbose=False)


class PointsIdentity(nn.Module):
    """The "extractor" of the 2D toy sets: the points are their own features."""

    features_list = ["points"]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (x.float(),)


def _register_fidelity(name: str, cls: type) -> None:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if name not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(name, cls)


__all__ = ["ExtractorSpec", "PointsIdentity", "WeightsMismatch"]
