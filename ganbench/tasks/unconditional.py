"""``unconditional``: a generator draws samples from latents alone (DCGAN, LSGAN, StyleGAN2, ProGAN, the MLP GAN on
the toy sets, or a user's model with ``sample(n, seed)``).

Outputs are ``model.sample(n, seed)``. Every sample metric that applies is computed against the reference split and
the held-out split; image tasks also hand the metrics the reference images (FWD reads pixels, not features).
Reference rows: the held-out real images (the best a model can look like at this sample count) and an untrained
network of the same config (what training must beat). Main check: FID below the untrained network's.

Perceptual path length (``ganbench.metrics.ppl``) needs the generator itself and costs two generator and two
distance passes per latent pair, so it is opt-in: score with ``Unconditional(path_length=PathLengthConfig(...))``
(``evaluate(protocol, task=Unconditional(path_length=...), model=...)``), or name ``"ppl"`` among the metrics a
caller passes to ``model_scores``. The registered ``unconditional`` task computes no PPL. Models with a latent
interface qualify: a zoo ``Generator`` whose entry draws one latent tensor per sample (DCGAN, LSGAN, ProGAN, StyleGAN2
in Z; StyleGAN2 also in W, through its ``mapping`` and ``synthesis``).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from ganbench.results.schema import SampleInfo, Score
from ganbench.tasks.base import REAL, UNTRAINED, ReferenceRow, SampleSet, Task, TaskData, check_sample_count, \
    register_task


def drawn_samples(model: Any, n: int, seed: int) -> SampleSet:
    """``model.sample(n, seed)`` with its provenance and the time it took."""
    check_sample_count(n, n, "the request")
    t0 = time.perf_counter()
    outputs = model.sample(n, seed=seed)
    seconds = time.perf_counter() - t0
    info = SampleInfo(len(outputs), "generator", seed=seed, model=getattr(model, "name", None),
                      weights_sha256=getattr(model, "weights_sha256", None))
    return SampleSet(outputs, info, seconds)


def reference_image_extras(data: TaskData) -> dict[str, Any]:
    """The reference split's images for pixel-space metrics (FWD), when the task's data are uint8 images (none for a
    statistics-file reference)."""
    ref = getattr(data.reference, "data", None)
    if isinstance(ref, torch.Tensor) and ref.dtype == torch.uint8 and ref.dim() == 4:
        return {"ref_images": ref}
    return {}


# ------------------------------------------------------------------------------------- perceptual path length


def latent_path(model: Any, space: str, pairs: int, seed: int, sampling: str, epsilon: float
                ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor], str]:
    """(e0, e1, generate, description): the ends of each latent step and the function from them to images.

    Latents are drawn as the model's entry draws them (``entry.example_inputs``); in Z they are slerped, in W (a
    generator with ``mapping`` and ``synthesis``) they are mapped first and lerped, as NVlabs does.

    Raises:
        ValueError: A model without a latent interface, or W space for a generator without a mapping network.
    """
    from ganbench.metrics.ppl import lerp, path_endpoints, slerp

    net, entry, config = getattr(model, "net", None), getattr(model, "entry", None), getattr(model, "config", None)
    if net is None or entry is None or getattr(model, "data_kind", "images") != "images":
        raise ValueError("PPL needs an image generator with a latent interface (a zoo Generator: .net, .entry, .config)")
    g = torch.Generator().manual_seed(seed)
    inputs = [entry.example_inputs(config, pairs, g) for _ in range(2)]
    if any(len(x) != 1 for x in inputs):
        raise ValueError(f"PPL interpolates one latent per sample; {entry.name} takes {len(inputs[0])} inputs")
    z0, z1 = inputs[0][0], inputs[1][0]
    t = torch.zeros(pairs) if sampling == "end" else torch.rand(pairs, generator=g)
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    if space == "z":
        e0, e1 = path_endpoints(z0, z1, t, epsilon, slerp)
        return e0, e1, lambda z: net(z.to(device)).cpu(), "slerp in Z"
    mapping, synthesis = getattr(net, "mapping", None), getattr(net, "synthesis", None)
    if mapping is None or synthesis is None:
        raise ValueError(f"PPL in W needs a generator with a mapping and a synthesis network; {entry.name} has none")
    with torch.no_grad():
        w0, w1 = mapping(z0.to(device)).cpu(), mapping(z1.to(device)).cpu()
    e0, e1 = path_endpoints(w0, w1, t, epsilon, lerp)
    return e0, e1, lambda w: synthesis(w.to(device), noise_mode="const").cpu(), "lerp in W"


def path_distance(kind: str, extractor: str | None) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str]:
    """(distance, name): LPIPS-VGG16 ("lpips"; "auto" when its weights are present), else the squared Euclidean
    distance of the extractor's distance-layer features of the float images ("features").

    Raises:
        ValueError: "features" without an extractor, or an extractor that only takes uint8 images (the 1e-4 step would
            not survive rounding to uint8).
        FileNotFoundError: "lpips" without its weights.
    """
    from ganbench.metrics.lpips import LPIPSVGG16, lpips_weights_available

    if kind == "lpips" or (kind == "auto" and lpips_weights_available()):
        net = LPIPSVGG16(sample_similarity_dtype=None)
        return (lambda a, b: net(a, b).reshape(-1)), "distance lpips-vgg16"
    if extractor is None:
        raise ValueError("PPL without LPIPS weights measures distances with an extractor: set "
                         "PathLengthConfig(extractor=...) (or get the LPIPS files, see ganbench.metrics.lpips)")
    from ganbench.features import get_extractor

    spec = get_extractor(extractor)
    net = spec.create()
    layer = list(net.features_list).index(spec.feature_layer)

    def features(x: torch.Tensor) -> torch.Tensor:
        try:
            return net(x)[layer].double()
        except (ValueError, AssertionError) as e:
            raise ValueError(f"PPL feeds float images in [0, 255] to the extractor (a 1e-4 step does not survive "
                             f"rounding to uint8); {extractor!r} refused them ({e}). Use LPIPS weights or an "
                             f"extractor that takes float images") from e

    return (lambda a, b: ((features(a) - features(b)) ** 2).sum(1)), f"distance {extractor}:{spec.feature_layer} squared L2"


def path_length_score(model: Any, cfg: Any, seed: int, extractor: str | None = None) -> Score:
    """PPL of ``model`` as ``cfg`` (a ``PathLengthConfig``) says, the distance recorded in the score's method."""
    from ganbench.metrics.ppl import path_lengths, perceptual_path_length

    seed = cfg.seed if cfg.seed is not None else seed
    e0, e1, generate, how = latent_path(model, cfg.space, cfg.pairs, seed, cfg.sampling, cfg.epsilon)
    distance, name = path_distance(cfg.distance, cfg.extractor or extractor)
    net = model.net
    was_training = net.training
    net.eval()
    try:
        lengths = path_lengths(generate, distance, e0, e1, cfg.epsilon, cfg.batch_size, cfg.crop)
    finally:
        net.train(was_training)
    what = f"{how}, sampling {cfg.sampling}, epsilon {cfg.epsilon:g}{', face crop' if cfg.crop else ''}, {name}"
    return perceptual_path_length(lengths, cfg.lower, cfg.upper, seed=seed, what=what)


class Unconditional(Task):
    name = "unconditional"
    description = "samples from latents: every sample metric against the reference and held-out splits"
    output = "sample"
    data_kinds = ("images", "points")
    reference_rows = (REAL, UNTRAINED)
    main_metric = "fid"

    def __init__(self, path_length: Any = None):
        """Args:
            path_length: A ``ganbench.metrics.ppl.PathLengthConfig``: compute PPL among the model scores (opt-in).
        """
        self.path_length = path_length

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        return drawn_samples(model, n, seed)

    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        return reference_image_extras(data)

    def model_scores(self, model: Any, samples: SampleSet, data: TaskData, seed: int,
                     metrics: tuple[str, ...] = (), extractor: str | None = None) -> dict[str, Score]:
        """PPL when the task was built with ``path_length`` or ``metrics`` names "ppl" (nothing otherwise).

        Args:
            metrics: The metrics the caller asked for (a protocol's).
            extractor: The protocol's extractor, for a feature distance when ``path_length`` names none.
        """
        cfg = self.path_length
        if cfg is None and "ppl" in metrics:
            from ganbench.metrics.ppl import PathLengthConfig

            cfg = PathLengthConfig()
        if cfg is None:
            return {}
        return {"ppl": path_length_score(model, cfg, seed, extractor)}


UNCONDITIONAL = register_task(Unconditional())
