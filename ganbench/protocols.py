"""Protocols: what makes two numbers comparable, as one object, and the named protocols papers report under.

A ``Protocol`` fixes the data the samples are compared with (a registered dataset and split, a folder of the user's
images, or a statistics file), the feature extractor, the sample count and seed, the comparison resolution and the
resize mode samples and reference both go through, and the metrics. ``ganbench.evaluate.evaluate`` scores under
one; every Result records its name (``custom`` when it was not a named one), and a leaderboard or ``ganbench
check`` refuses to rank or compare results of different protocols.

Named protocols (``ganbench ls protocols``) follow NVlabs' metric ids (stylegan2-ada-pytorch ``metrics/
metric_main.py``: ``fid50k_full``, ``kid50k_full``, ``pr50k3_full``, ``is50k``, ``fid10k``: 50k or 10k generated
samples against the full training set) and clean-fid's resize modes (Parmar et al. 2022: ``clean``,
``legacy_tensorflow``, ``legacy_pytorch``). What differs from NVlabs: ``pr50k3_full`` uses Inception features here,
because ganbench has no VGG-16 extractor yet (NVlabs use VGG-16's fc2 features), so its numbers are ganbench's own
and the description says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ganbench.registry import PROTOCOLS

CUSTOM = "custom"  # the protocol name of an evaluation that did not ask for a named one


@dataclass(frozen=True)
class Protocol:
    """One concrete protocol: everything that changes the numbers besides the samples."""

    dataset: str  # registry name of the dataset (or "hf:OWNER/NAME") the reference comes from; a label otherwise
    extractor: str  # feature extractor registry name
    n: int  # outputs scored
    seed: int = 0  # sampling seed of a generator, and the seed of every bootstrap and subset
    resolution: int | None = None  # image side of the comparison (None: the samples' own)
    reference_split: str = "train"  # split whose features are the reference
    heldout_split: str | None = "test"  # held-out split (memorisation, the real row, a task's test inputs)
    metrics: tuple[str, ...] = ()  # metric names; empty: the task's defaults
    reference: str | None = None  # REF given explicitly: a folder, a .zip, a statistics .npz, or "dataset:split"
    resize: str = "bilinear"  # resize mode (ganbench.data.resize) samples and reference both go through
    name: str = CUSTOM  # the named protocol this is an instance of, or "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ValueError(f"the sample count n must be a positive integer, got {self.n!r}")
        if self.resolution is not None and (not isinstance(self.resolution, int) or isinstance(self.resolution, bool)
                                            or self.resolution < 4):
            raise ValueError(f"resolution must be an integer >= 4 (or None for the samples' own), got "
                             f"{self.resolution!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        from ganbench.data.resize import RESIZE_MODES

        if self.resize not in RESIZE_MODES:
            raise ValueError(RESIZE_MODES._unknown_message(self.resize))


@dataclass(frozen=True)
class NamedProtocol:
    """A protocol papers report under, made concrete for a dataset by ``protocol``."""

    name: str  # registry name, recorded in every Result
    extractor: str  # feature extractor
    n: int  # generated samples
    metrics: tuple[str, ...]  # metrics it computes
    resize: str  # resize mode of the comparison resolution step
    reference_split: str  # the split the reference statistics come from ("train": the full training set)
    description: str  # what it is, and where it comes from
    resolution: int | None = None  # the comparison side it fixes (None: the samples'); clean-fid modes: 299

    def protocol(self, dataset: str, seed: int = 0, resolution: int | None = None, reference: str | None = None,
                 heldout_split: str | None = None) -> Protocol:
        """This protocol on ``dataset`` (or on an explicit reference)."""
        if self.resolution is not None and resolution not in (None, self.resolution):
            raise ValueError(f"protocol {self.name!r} compares at {self.resolution} px; --resolution {resolution} "
                             f"conflicts with it")
        return Protocol(dataset, self.extractor, self.n, seed, resolution or self.resolution, self.reference_split,
                        heldout_split, self.metrics, reference, self.resize, self.name)


DIGIT_EXTRACTORS = {"stacked_mnist": "stacked_mnist_cnn"}  # datasets whose own extractor is not channels' default


def default_extractor(reference) -> str:
    """The extractor a reference is scored with unless one is named: Inception-v3 (the FID network) for RGB
    natural images, ganbench's ``mnist_cnn`` for grey digit sets, ``points2d`` for point sets, the one a ganbench
    statistics file names, Inception for any other statistics file (pytorch-fid's and clean-fid's are Inception).

    Args:
        reference: A ``ganbench.data.reference.ReferenceSpec``.
    """
    from ganbench.registry import DATASETS

    if reference.kind == "stats":
        from ganbench.data.reference import load_stats

        return str(load_stats(reference.path).meta.get("extractor", "inception_v3_fid"))
    if reference.kind == "dataset" and reference.dataset in DATASETS:
        meta = DATASETS.meta(reference.dataset)
        if reference.dataset in DIGIT_EXTRACTORS:
            return DIGIT_EXTRACTORS[reference.dataset]
        if meta.get("kind") == "points":
            return "points2d"
        return "mnist_cnn" if meta.get("channels", 3) == 1 or meta.get("channels_b") == 1 else "inception_v3_fid"
    if reference.kind == "folder":
        from ganbench.data.core import image_folder

        first = image_folder(reference.path, limit=1, channels=3).data
        grey = bool((first[:, 0] == first[:, 1]).all() and (first[:, 1] == first[:, 2]).all())
        return "mnist_cnn" if grey else "inception_v3_fid"
    return "inception_v3_fid"


def register_protocol(p: NamedProtocol) -> NamedProtocol:
    PROTOCOLS.register(p.name, p, description=p.description, extractor=p.extractor, n=p.n,
                       metrics=",".join(p.metrics), resize=p.resize)
    return p


def get_protocol(name: str) -> NamedProtocol:
    return PROTOCOLS.get(name)


def named(name: str, dataset: str, **overrides) -> Protocol:
    """The named protocol ``name`` on ``dataset``, with fields (seed, resolution, reference, ...) overridden."""
    base = get_protocol(name).protocol(dataset)
    return dataclasses.replace(base, **overrides)


_NV = "NVlabs stylegan2-ada-pytorch metrics/metric_main.py"
_INCEPTION = "inception_v3_fid"
for _p in (
    NamedProtocol("fid50k_full", _INCEPTION, 50_000, ("fid",), "legacy_tensorflow", "train",
                  f"FID of 50k samples against the full training set, Inception-v3 pool3, TF bilinear ({_NV})"),
    NamedProtocol("kid50k_full", _INCEPTION, 50_000, ("kid",), "legacy_tensorflow", "train",
                  f"KID of 50k samples against the full training set ({_NV})"),
    NamedProtocol("pr50k3_full", _INCEPTION, 50_000, ("prc",), "legacy_tensorflow", "train",
                  f"precision/recall, k=3, 50k samples against the full training set ({_NV}; NVlabs use VGG-16 "
                  f"features, ganbench Inception-v3: not comparable to NVlabs' numbers)"),
    NamedProtocol("is50k", _INCEPTION, 50_000, ("is",), "legacy_tensorflow", "train",
                  f"Inception Score of 50k samples, 10 splits ({_NV})"),
    NamedProtocol("fid10k", _INCEPTION, 10_000, ("fid",), "legacy_tensorflow", "train",
                  f"FID of 10k samples against the training set ({_NV}, fid10k)"),
    NamedProtocol("fid50k_clean", _INCEPTION, 50_000, ("fid",), "clean", "train",
                  "FID of 50k samples, clean-fid's 'clean' resize (PIL bicubic, antialiased) of samples and reference "
                  "to 299 px", resolution=299),
    NamedProtocol("kid50k_clean", _INCEPTION, 50_000, ("kid",), "clean", "train",
                  "KID of 50k samples, clean-fid's 'clean' resize", resolution=299),
    NamedProtocol("fid10k_clean", _INCEPTION, 10_000, ("fid",), "clean", "train",
                  "FID of 10k samples, clean-fid's 'clean' resize", resolution=299),
    NamedProtocol("fid50k_legacy_pytorch", _INCEPTION, 50_000, ("fid",), "legacy_pytorch", "train",
                  "FID of 50k samples, pytorch-fid's bilinear resize to 299 px (clean-fid's 'legacy_pytorch')",
                  resolution=299),
    NamedProtocol("digits1k", "mnist_cnn", 1_000, (), "bilinear", "train",
                  "ganbench's offline digits protocol: 1000 samples, the mnist_cnn classifier's features, every "
                  "default metric (the quick and generation suites)"),
):
    register_protocol(_p)


__all__ = ["CUSTOM", "NamedProtocol", "Protocol", "default_extractor", "get_protocol", "named", "register_protocol"]
