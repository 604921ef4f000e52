"""Batch-size independence (issue 16, item 8; torch-fidelity's issue #43): an extractor's features of an image must
not depend on which other images share its batch. Every extractor that runs here is run at batch sizes 1, 7, 64 and
500 through ``ganbench.features.extract``; every layer must agree with the batch-of-one features to 1e-5 relative
(max |difference| / max |feature|). Inception, CLIP and DINOv2 get random weights of the real files' keys and shapes
(nothing is downloaded): the arithmetic, and so the batch dependence, is that of the real networks."""

import re
import warnings

import pytest
import torch
from torch import nn

from ganbench.data import load
from ganbench.features import extract, get_extractor

BATCH_SIZES = (1, 7, 64, 500)
TOLERANCE = 1e-5


def batch_dependence(spec, samples, net=None, alone: int = 70) -> float:
    """Largest relative difference of any layer at batch sizes 7, 64 and 500 from the features of the first
    ``alone`` samples computed one at a time (the other batches run over every sample)."""
    net = net if net is not None else spec.create()
    reference = extract(spec, samples[:alone], batch_size=1, progress=False, net=net)
    worst = 0.0
    for batch in BATCH_SIZES[1:]:
        feats = extract(spec, samples, batch_size=batch, progress=False, net=net)
        for layer, ref in reference.items():
            err = float((feats[layer][:alone] - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
            worst = max(worst, err)
    return worst


def assert_batch_independent(spec, samples, net=None):
    err = batch_dependence(spec, samples, net)
    assert err <= TOLERANCE, (spec.name, err)


def test_digit_extractors_do_not_depend_on_the_batch():
    x = load("mnist", "test", 32).data[:510]  # batch 500 splits it as 500 + 10
    assert_batch_independent(get_extractor("mnist_cnn"), x)
    rgb = torch.stack([x, x.roll(1, 0), x.roll(2, 0)], 1)[:, :, 0]  # three digits per image
    assert_batch_independent(get_extractor("stacked_mnist_cnn"), rgb)


def test_a_network_that_normalises_over_its_batch_is_caught():
    """A planted defect (each batch centred on its own mean, as batch norm in training mode does) fails the check."""
    spec = get_extractor("mnist_cnn")
    inner = spec.create()

    class BatchCentred(nn.Module):
        features_list = inner.features_list

        def forward(self, x):
            return tuple(f - f.mean(0, keepdim=True) * (len(f) > 1) for f in inner(x))

    assert batch_dependence(spec, load("mnist", "test", 32).data[:510], BatchCentred()) > 1e-2


def test_points_do_not_depend_on_the_batch():
    assert_batch_independent(get_extractor("points2d"), load("ring8", "test").data[:510])


def _images(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def test_inception_does_not_depend_on_the_batch(tmp_path, monkeypatch):
    from ganbench.features.inception import WEIGHTS_FILE, write_random_weights

    path = write_random_weights(tmp_path / WEIGHTS_FILE, seed=0, calibration_images=2)
    monkeypatch.setenv("GANBENCH_INCEPTION_WEIGHTS", str(path))
    spec = get_extractor("inception_v3_fid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a named file without the published hash warns
        net = spec.create()
    assert_batch_independent(spec, _images(9, 64), net)  # 9 images: one batch at 64 and 500, 7 + 2 at 7


def test_clip_does_not_depend_on_the_batch(tmp_path):
    from torch_fidelity.feature_extractor_clip import CLIPVisual, LayerNorm, Transformer, convert_weights

    from ganbench.features.foundation import CLIP_VIT_B_32, CLIPFeatureExtractor

    class Archive(nn.Module):  # OpenAI's archive layout, small: a ViT vision tower and a stub text tower
        def __init__(self):
            super().__init__()
            self.visual = CLIPVisual(32, 64, 2, 64, 16).visual
            self.transformer = Transformer(32, 1, 1)
            self.token_embedding = nn.Embedding(16, 32)
            self.positional_embedding = nn.Parameter(torch.randn(8, 32) * 0.01)
            self.ln_final = LayerNorm(32)
            self.text_projection = nn.Parameter(torch.randn(32, 32) * 32 ** -0.5)
            self.logit_scale = nn.Parameter(torch.tensor(4.6052))

        def forward(self, x):
            return x

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = Archive().eval()
        convert_weights(model)  # fp16 weights, as OpenAI's archives hold
        path = tmp_path / "clip.pt"
        torch.jit.save(torch.jit.trace(model, torch.zeros(1)), str(path))
        net = CLIPFeatureExtractor("clip-vit-b-32", ["clip"], str(path), verbose=False)
        assert_batch_independent(CLIP_VIT_B_32, _images(9, 40), net)


def test_dinov2_does_not_depend_on_the_batch():
    from ganbench.features.foundation import DINOV2_VIT_S_14, DINOv2FeatureExtractor, DinoVisionTransformer

    g = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        layout = DinoVisionTransformer.for_model("dinov2-vit-s-14").state_dict()
    state = {}
    for key, t in layout.items():  # the official checkpoint's keys and shapes, activations kept O(1)
        r = torch.randn(t.shape, generator=g)
        if key.endswith("gamma"):
            r = 0.5 + 0.1 * r
        elif re.search(r"norm\d?\.weight$", key):
            r = 1.0 + 0.1 * r
        elif key.endswith("bias") or key in ("cls_token", "pos_embed", "mask_token"):
            r = 0.1 * r
        else:
            r = r * t[0].numel() ** -0.5
        state[key] = r.contiguous()
    net = DINOv2FeatureExtractor("dinov2-vit-s-14", ["dinov2"], state_dict=state)
    assert_batch_independent(DINOV2_VIT_S_14, _images(9, 32), net)
