"""Feature extractors behind one contract: uint8 NCHW images (or 2D points) in, named feature tensors out.

Each extractor is registered in ganbench's ``EXTRACTORS`` and, where it is an image network, in
torch-fidelity's feature-extractor registry, so both libraries compute from the same features.
Reference-set features are cached on disk under a key that hashes everything that changes them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_fidelity
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ganbench.data import Split
from ganbench.features.mnist_cnn import MnistCNNFeatureExtractor
from ganbench.features.spec import ExtractorSpec, PointsIdentity, WeightsMismatch, _register_fidelity
from ganbench.paths import cache_dir
from ganbench.registry import EXTRACTORS
from ganbench.results.store import atomic_path

CACHE_VERSION = "2"  # bump when extraction changes in a way the key does not capture (2: Inception's spatial layer)


_register_fidelity("ganbench-mnist-cnn", MnistCNNFeatureExtractor)
EXTRACTORS.register("mnist_cnn", ExtractorSpec("mnist_cnn", "images", "pool", "logits",
                                               "luma, bilinear to 32x32", card="mnist_cnn",
                                               fidelity_name="ganbench-mnist-cnn"),
                    input_kind="images", description="digit classifier trained by ganbench on mnist (128-d pool, 10 logits)")
@dataclass(frozen=True)
class StackedDigitsSpec(ExtractorSpec):
    """``mnist_cnn`` on each channel of a Stacked MNIST image (see ``ganbench.features.stacked``)."""

    def layers(self) -> list[str]:
        return ["pool", "digits"]

    def create(self) -> nn.Module:
        from ganbench.features.stacked import StackedDigitsExtractor

        path, _ = self.weights()
        digit = torch_fidelity.utils.create_feature_extractor(
            self.fidelity_name, ["pool", "logits"], cuda=False, feature_extractor_weights_path=str(path), verbose=False)
        return StackedDigitsExtractor(digit).eval()


EXTRACTORS.register("stacked_mnist_cnn", StackedDigitsSpec("stacked_mnist_cnn", "images", "pool", None,
                                                            "per channel: bilinear to 32x32", card="mnist_cnn",
                                                            fidelity_name="ganbench-mnist-cnn"),
                    input_kind="images", description="mnist_cnn per RGB channel: 384-d pool, 3x10 digit logits")
EXTRACTORS.register("points2d", ExtractorSpec("points2d", "points", "points", None, "none"),
                    input_kind="points", description="identity on 2D points (toy sets)")


from ganbench.features.foundation import register_foundation_extractors  # noqa: E402  (needs ExtractorSpec)

register_foundation_extractors(EXTRACTORS)


def get_extractor(name: str) -> ExtractorSpec:
    return EXTRACTORS.get(name)


@torch.no_grad()
def extract(spec: ExtractorSpec, samples: torch.Tensor, batch_size: int = 250, progress: bool = True,
            net: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Run ``samples`` through the extractor once; returns every layer it provides, float32 on CPU."""
    if spec.input_kind == "images" and (samples.dtype != torch.uint8 or samples.dim() != 4):
        raise ValueError(f"extractor {spec.name!r} takes uint8 NCHW images, got {samples.dtype} {tuple(samples.shape)}")
    if spec.input_kind == "points" and (samples.dim() != 2 or not samples.dtype.is_floating_point):
        raise ValueError(f"extractor {spec.name!r} takes float (N, D) points, got {samples.dtype} {tuple(samples.shape)}")
    net = net if net is not None else spec.create()
    names = list(net.features_list)
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    with tqdm(total=len(samples), desc=f"features {spec.name}", unit="img", file=sys.stderr,
              disable=not progress or spec.input_kind == "points", leave=False) as bar:
        for i in range(0, len(samples), batch_size):
            feats = net(samples[i:i + batch_size])
            for n, f in zip(names, feats):
                out[n].append(f.float().cpu())
            bar.update(min(batch_size, len(samples) - i))
    return {n: torch.cat(v) for n, v in out.items()}


def reference_key(spec: ExtractorSpec, split: Split) -> str:
    """Hash of everything that changes a reference set's features."""
    _, weights_sha = spec.weights()
    parts = {"v": CACHE_VERSION, "extractor": spec.name, "weights": weights_sha, "layers": spec.layers(),
             "resize": spec.input_resize, "dataset": split.dataset, "split": split.split, "data": split.sha256,
             "data_resize": split.resize, "n": len(split), "torch_fidelity": torch_fidelity.__version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def reference_features(spec: ExtractorSpec, split: Split, progress: bool = True) -> dict[str, torch.Tensor]:
    """Features of a real split, from the on-disk cache when the same inputs were seen before."""
    path = cache_dir() / "features" / f"{spec.name}-{split.dataset}-{split.split}-{reference_key(spec, split)}.safetensors"
    if path.exists():
        return load_file(str(path))
    feats = extract(spec, split.data, progress=progress)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in feats.items()}, str(tmp))
    return feats
import ganbench.features.inception  # noqa: E402,F401  (registers inception_v3_fid)
