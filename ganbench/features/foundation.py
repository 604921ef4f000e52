"""Foundation-model feature extractors: CLIP and DINOv2, through torch-fidelity's own extractor classes.

Fréchet and kernel distances need not use Inception-v3. Kynkäänniemi et al. 2023 ("The Role of ImageNet
Classes in Fréchet Inception Distance", ICLR 2023) show that FID can be moved by matching ImageNet class
histograms without improving images, and that FID computed on CLIP features (Radford et al. 2021,
"Learning Transferable Visual Models From Natural Language Supervision") is far less sensitive to that.
Stein et al. 2023 ("Exposing flaws of generative model evaluation metrics and their unfair treatment of
diffusion models", NeurIPS 2023) find that the self-supervised DINOv2 ViT-L/14 (Oquab et al. 2023, "DINOv2:
Learning Robust Visual Features without Supervision") gives the feature space whose distances agree best
with human judgements. This module provides both, with features equal to torch-fidelity's:

- ``clip_*`` (``clip_vit_b_32`` first): torch-fidelity's ``FeatureExtractorCLIP`` (registered there as
  ``"clip-vit-b-32"`` etc.) is used unchanged; ``CLIPFeatureExtractor`` only resolves the weights file
  itself and repeats 1-channel images to 3 channels. Feature ``"clip"``: the image embedding (512-d for
  ViT-B/32), after torch-fidelity's TF1.x-compatible bilinear resize to the model's resolution and CLIP's
  mean/std normalisation.
- ``dinov2_*`` (``dinov2_vit_s_14`` first): torch-fidelity's ``FeatureExtractorDinoV2`` forward (the same
  TF1.x-compatible resize to 224x224, ImageNet mean/std normalisation, float32 output) is inherited
  unchanged; only the network inside it is built differently (see "Loading"). Feature ``"dinov2"``: the
  layer-normed class token (384-d for ViT-S/14).

Inputs are uint8 NCHW. torch-fidelity's classes reject anything but 3 channels; here a 1-channel image is
repeated to 3 (the same plane in R, G and B), as ``inception_v3_fid`` does, so MNIST-like sets can be scored.

Loading (what is and is not unpickled or executed):

- CLIP. OpenAI publishes CLIP as TorchScript archives (``ViT-B-32.pt``). torch-fidelity's constructor,
  when given ``feature_extractor_weights_path``, loads it with ``torch.jit.load`` and reads only
  ``.state_dict()``; ganbench always passes a path, so torch-fidelity's other branch
  (``torch.hub.load_state_dict_from_url``, i.e. unrestricted unpickling) never runs.
  ``torch.load(weights_only=True)`` refuses TorchScript archives outright, so ``torch.jit.load`` is the
  safe option that exists: its deserializer rebuilds TorchScript modules and tensors only and cannot
  import or call arbitrary Python objects, unlike ``pickle``. (Archived TorchScript methods are compiled;
  none is called here except a scripted ``__setstate__``, which is TorchScript, not Python.) The sha256 of
  the file is compared with the hash OpenAI publishes in the URL before it is read (see below).
- DINOv2. torch-fidelity builds DINOv2 only through ``torch.hub.load("facebookresearch/dinov2", ...)``,
  which downloads and *runs* the repository's ``hubconf.py`` from GitHub, and its weights go through
  ``torch.hub.load_state_dict_from_url`` (unrestricted unpickling); a local weights path raises
  an error. ganbench never calls that constructor: ``DinoVisionTransformer`` below is a port
  of the inference path of ``dinov2/models/vision_transformer.py`` (facebookresearch/dinov2 at b8931f7,
  August 2025: patch embedding, bicubic position-embedding interpolation with the 0.1 offset, pre-norm
  blocks with LayerScale, SDPA attention as used when xFormers is absent, final LayerNorm, class token)
  with the same parameter names, and the official ``dinov2_vit*14_pretrain.pth`` is loaded with
  ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``. Limit: the port is checked
  against the hub code only where a local checkout of facebookresearch/dinov2 exists (see
  ``tests/test_foundation_extractors.py``); torch-fidelity's own DINOv2 path is otherwise not run.

Weights are found by ``ganbench.weights`` (one resolver for every weights file), in this order: the
extractor's environment variable (``GANBENCH_CLIP_WEIGHTS`` for ``clip_vit_b_32``, ``GANBENCH_DINOV2_WEIGHTS``
for ``dinov2_vit_s_14``, and ``GANBENCH_<NAME>_WEIGHTS`` for every extractor, e.g.
``GANBENCH_CLIP_VIT_L_14_WEIGHTS``); ``$GANBENCH_CACHE/weights/<file>``; ``torch.hub.get_dir()/checkpoints/<file>``,
where torch-fidelity's download lands (``<file>`` is torch-fidelity's file name: ``clip-vit-b-32-<sha256>.pt``,
``dinov2_vits14_pretrain.pth``); for CLIP also ``~/.cache/clip/ViT-B-32.pt`` (OpenAI's ``clip`` package cache;
the same file). CLIP files found in a cache or downloaded must have the sha256 OpenAI publishes in the URL (a
mismatch is refused); a file named by the variable is the user's choice and a mismatch only warns (results record
its own sha256). DINOv2's publisher gives no hash. If no file exists, it is downloaded into the torch hub location
unless ganbench is offline (``GANBENCH_OFFLINE=1``, ``HF_HUB_OFFLINE=1``, or the download host does not answer
within half a second), in which case a ``FileNotFoundError`` names the file, its URL and where to put it, within
a second.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_clip import MODEL_METADATA as CLIP_METADATA
from torch_fidelity.feature_extractor_clip import MODEL_URLS as CLIP_URLS
from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP
from torch_fidelity.feature_extractor_dinov2 import MODEL_METADATA as DINOV2_METADATA
from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2
from torch_fidelity.helpers import text_to_dtype, vassert

from ganbench.features.spec import ExtractorSpec
# The resolver lives in ganbench.weights; these names stay importable from here for the modules that use them.
from ganbench.weights import (OFFLINE_ENVS, PROBE_TIMEOUT_S, WeightsFile, host_reachable, hub_checkpoints_dir,
                              load_state_dict, offline_by_env, weights_sha256)


def _expand_gray(x: torch.Tensor, name: str) -> torch.Tensor:
    """Check uint8 NCHW with 1 or 3 channels; repeat a single channel to three."""
    if not torch.is_tensor(x) or x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{name} expects uint8 NCHW images with 1 or 3 channels, got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _model_name(name: str, known: Sequence[str], prefix: str = "ganbench-") -> str:
    """torch-fidelity's model name for ``name`` (torch-fidelity's own, or ganbench's ``ganbench-`` alias)."""
    model = name[len(prefix):] if name.startswith(prefix) else name
    if model not in known:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(known)}")
    return model


# --------------------------------------------------------------------------------------------------------------
# CLIP


CLIP_DIMS = {  # image embedding size and input resolution of each CLIP model in torch-fidelity's table
    "clip-rn50": (1024, 224), "clip-rn101": (512, 224), "clip-rn50x4": (640, 288), "clip-rn50x16": (768, 384),
    "clip-rn50x64": (1024, 448), "clip-vit-b-32": (512, 224), "clip-vit-b-16": (512, 224),
    "clip-vit-l-14": (768, 224), "clip-vit-l-14-336px": (768, 336),
}


def _env_name(model: str) -> str:
    return "GANBENCH_" + model.upper().replace("-", "_") + "_WEIGHTS"


def clip_weights(model: str = "clip-vit-b-32") -> WeightsFile:
    """The ``WeightsFile`` of a torch-fidelity CLIP model (``"clip-vit-b-32"``, ...)."""
    model = _model_name(model, list(CLIP_URLS))
    meta = CLIP_METADATA[model]
    envs = (("GANBENCH_CLIP_WEIGHTS",) if model == "clip-vit-b-32" else ()) + (_env_name(model),)
    return WeightsFile(
        label=f"CLIP {meta['filename']} weights (TorchScript archive)",
        filename=f"{model}-{meta['hash']}.pt",  # the file_name torch-fidelity passes to load_state_dict_from_url
        url=CLIP_URLS[model], envs=envs, sha256=meta["hash"],
        extra_paths=(f"~/.cache/clip/{meta['filename']}.pt",))


class CLIPFeatureExtractor(FeatureExtractorCLIP):
    """torch-fidelity's ``FeatureExtractorCLIP``, always given a local file, accepting 1-channel input.

    Args:
        name: torch-fidelity's model name (``"clip-vit-b-32"``) or ganbench's alias in torch-fidelity's
            registry (``"ganbench-clip-vit-b-32"``).
        features_list: ``["clip"]``.
        feature_extractor_weights_path: The TorchScript archive; None resolves it (module docstring).
        feature_extractor_internal_dtype: None/"float32" or "float64", as in torch-fidelity.
        **kwargs: torch-fidelity's keyword arguments (``verbose`` shows a download progress bar).
    """

    def __init__(self, name: str, features_list: Sequence[str], feature_extractor_weights_path: str | None = None,
                 feature_extractor_internal_dtype: str | None = None, **kwargs: Any):
        model = _model_name(name, list(CLIP_URLS))
        path = feature_extractor_weights_path or clip_weights(model).resolve(progress=bool(kwargs.get("verbose", True)))
        with warnings.catch_warnings():
            # torch.jit.load is deprecated in favour of torch.export, which OpenAI's archives predate.
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*")
            # With a path, torch-fidelity calls torch.jit.load (not torch.load / pickle); see the module docstring.
            super().__init__(model, list(features_list), feature_extractor_weights_path=str(path),
                             feature_extractor_internal_dtype=feature_extractor_internal_dtype, **kwargs)
        self.name = name
        self.model_name = model
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """torch-fidelity's forward on uint8 NCHW images; 1 channel is repeated to 3."""
        return super().forward(_expand_gray(x, self.name))


# --------------------------------------------------------------------------------------------------------------
# DINOv2: the inference path of facebookresearch/dinov2's DinoVisionTransformer, same parameter names.


DINOV2_ARCHS = {  # torch-fidelity name -> (embed dim, depth, heads, ffn), as dinov2/hub/backbones.py builds them
    "dinov2-vit-s-14": (384, 12, 6, "mlp"),
    "dinov2-vit-b-14": (768, 12, 12, "mlp"),
    "dinov2-vit-l-14": (1024, 24, 16, "mlp"),
    "dinov2-vit-g-14": (1536, 40, 24, "swiglufused"),
}
DINOV2_BASE_URL = "https://dl.fbaipublicfiles.com/dinov2"  # dinov2/hub/utils.py _DINOV2_BASE_URL
DINOV2_IMG_SIZE = 518  # the hub models' img_size: 37x37 patch position embeddings (+1 class token)
DINOV2_PATCH = 14


def dinov2_weights(model: str = "dinov2-vit-s-14") -> WeightsFile:
    """The ``WeightsFile`` of a torch-fidelity DINOv2 model (``"dinov2-vit-s-14"``, ...)."""
    model = _model_name(model, list(DINOV2_METADATA))
    hub_name = DINOV2_METADATA[model]  # dinov2_vits14
    envs = (("GANBENCH_DINOV2_WEIGHTS",) if model == "dinov2-vit-s-14" else ()) + (_env_name(model),)
    filename = f"{hub_name}_pretrain.pth"
    return WeightsFile(label=f"DINOv2 {hub_name} weights", filename=filename,
                       url=f"{DINOV2_BASE_URL}/{hub_name}/{filename}", envs=envs)


class _Attention(nn.Module):
    """dinov2.layers.Attention (MemEffAttention without xFormers): fused qkv, SDPA, projection."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = [t.transpose(1, 2) for t in torch.unbind(qkv, 2)]
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0)
        return self.proj(x.transpose(1, 2).contiguous().view(B, N, C))


class _LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _SwiGLU(nn.Module):
    """dinov2.layers.SwiGLUFFNFused without xFormers (ViT-g/14): hidden = 2/3 of 4*dim, rounded up to 8."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class _Block(nn.Module):
    """dinov2.layers.Block in eval mode: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, dim: int, num_heads: int, ffn: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = (_SwiGLU if ffn == "swiglufused" else _Mlp)(dim, 4 * dim)
        self.ls2 = _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # B HW C


class DinoVisionTransformer(nn.Module):
    """The DINOv2 backbone as ``torch.hub.load("facebookresearch/dinov2", "dinov2_vit*14")`` builds it
    (img_size 518, patch 14, LayerScale, no register tokens, block_chunks 0, interpolate_offset 0.1,
    no antialiasing), inference only; ``forward`` returns the layer-normed class token, as the hub model's
    ``forward`` does (``head`` is the identity). Parameter names equal the official checkpoints'.

    Args:
        embed_dim: Token width (384 for ViT-S/14).
        depth: Number of blocks.
        num_heads: Attention heads.
        ffn: "mlp" or "swiglufused" (ViT-g/14).
    """

    interpolate_offset = 0.1
    interpolate_antialias = False

    def __init__(self, embed_dim: int, depth: int, num_heads: int, ffn: str = "mlp",
                 img_size: int = DINOV2_IMG_SIZE, patch_size: int = DINOV2_PATCH):
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        num_patches = (img_size // patch_size) ** 2
        self.patch_embed = _PatchEmbed(embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # training only; kept for strict loading
        self.blocks = nn.ModuleList([_Block(embed_dim, num_heads, ffn) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    @classmethod
    def for_model(cls, model: str) -> "DinoVisionTransformer":
        """The architecture of a torch-fidelity DINOv2 model name (uninitialised weights)."""
        return cls(*DINOV2_ARCHS[_model_name(model, list(DINOV2_ARCHS))])

    def position_table(self, tokens: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """Position embeddings for a ``rows`` x ``cols`` pixel input (class position first).

        The stored table covers a square grid of patches; other inputs get its patch part resized bicubically.
        DINOv2 resizes by a scale factor 0.1 patch larger than the ratio of grids (not to a target size), and
        ganbench does the same, since that is what makes the features equal the hub model's.
        """
        stored = self.pos_embed.shape[1] - 1
        if tokens.shape[1] - 1 == stored and rows == cols:
            return self.pos_embed
        side = math.isqrt(stored)
        table = self.pos_embed.float()
        grid = table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        target = (rows // self.patch_size, cols // self.patch_size)
        scale = tuple((t + self.interpolate_offset) / side for t in target)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=self.interpolate_antialias)
        if tuple(grid.shape[-2:]) != target:
            raise RuntimeError(f"position grid resized to {tuple(grid.shape[-2:])}, expected {target}")
        patches = grid.permute(0, 2, 3, 1).reshape(1, target[0] * target[1], -1)
        return torch.cat([table[:, :1], patches], dim=1).to(tokens.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[-2:]
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.position_table(x, rows, cols)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


class DINOv2FeatureExtractor(FeatureExtractorDinoV2):
    """torch-fidelity's ``FeatureExtractorDinoV2`` (its forward, unchanged) around ``DinoVisionTransformer``
    loaded with ``torch.load(weights_only=True)``, never ``torch.hub.load``; 1-channel input is repeated to 3.

    Args:
        name: torch-fidelity's model name (``"dinov2-vit-s-14"``) or ganbench's alias
            (``"ganbench-dinov2-vit-s-14"``).
        features_list: ``["dinov2"]``.
        feature_extractor_weights_path: The official ``dinov2_vit*14_pretrain.pth``; None resolves it.
        feature_extractor_internal_dtype: None/"float32" or "float64", as in torch-fidelity.
        state_dict: Weights already in memory (overrides the path).
        **kwargs: torch-fidelity's keyword arguments (``verbose`` shows a download progress bar).
    """

    def __init__(self, name: str, features_list: Sequence[str], feature_extractor_weights_path: str | None = None,
                 feature_extractor_internal_dtype: str | None = None, *,
                 state_dict: dict[str, torch.Tensor] | None = None, **kwargs: Any):
        FeatureExtractorBase.__init__(self, name, list(features_list))
        model = _model_name(name, list(DINOV2_METADATA))
        vassert(feature_extractor_internal_dtype in ("float32", "float64", None),
                "Only 32-bit floats are supported for internal dtype of this feature extractor")
        self.feature_extractor_internal_dtype = text_to_dtype(feature_extractor_internal_dtype, "float32")
        self.model_name = model
        if state_dict is None:
            path = feature_extractor_weights_path or dinov2_weights(model).resolve(
                progress=bool(kwargs.get("verbose", True)))
            state_dict = load_state_dict(path)
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            self.model = DinoVisionTransformer.for_model(model)
        self.model.load_state_dict(state_dict, strict=True, assign=True)  # keys and shapes still checked
        self.to(self.feature_extractor_internal_dtype)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """torch-fidelity's forward on uint8 NCHW images; 1 channel is repeated to 3."""
        return super().forward(_expand_gray(x, self.name))


# --------------------------------------------------------------------------------------------------------------
# ganbench specs and registration


@dataclass(frozen=True)
class FoundationSpec(ExtractorSpec):
    """``ExtractorSpec`` of a torch-fidelity foundation-model extractor; weights as the module docstring says.

    ``fidelity_name`` is ganbench's alias in torch-fidelity's registry (``"ganbench-clip-vit-b-32"``), through
    which torch-fidelity's ``calculate_metrics`` reaches the same class; ``model`` is torch-fidelity's name.
    """

    model: str = ""  # torch-fidelity model name, "clip-vit-b-32" / "dinov2-vit-s-14"

    extractor_class: ClassVar[type[FeatureExtractorBase]]
    locate: ClassVar[Callable[[str], WeightsFile]]  # torch-fidelity model name -> its weights file

    def weights_file(self) -> WeightsFile:
        return type(self).locate(self.model)

    def weights(self) -> tuple[Path | None, str | None]:
        """(weights path, sha256), downloading into torch-fidelity's cache when online and missing.

        Raises:
            FileNotFoundError: The file is missing and cannot be downloaded (within a second when offline).
            ganbench.weights.WeightsMismatch: A cached or downloaded CLIP file does not have OpenAI's published
                sha256 (a file named by the extractor's variable only warns).
        """
        path = self.weights_file().resolve()
        return path, weights_sha256(path)

    def create(self) -> nn.Module:
        """The extractor network in eval mode, torch-fidelity's class with ganbench's loading."""
        path, _ = self.weights()
        return self.extractor_class(self.fidelity_name or self.model, self.layers(),
                                    feature_extractor_weights_path=str(path), verbose=False)


@dataclass(frozen=True)
class CLIPSpec(FoundationSpec):
    extractor_class: ClassVar[type[FeatureExtractorBase]] = CLIPFeatureExtractor

    locate: ClassVar[Callable[[str], WeightsFile]] = staticmethod(clip_weights)


@dataclass(frozen=True)
class DINOv2Spec(FoundationSpec):
    extractor_class: ClassVar[type[FeatureExtractorBase]] = DINOv2FeatureExtractor

    locate: ClassVar[Callable[[str], WeightsFile]] = staticmethod(dinov2_weights)


def _ganbench_name(model: str) -> str:
    return model.replace("-", "_")  # "clip-vit-l-14-336px" -> "clip_vit_l_14_336px"


def _clip_spec(model: str) -> CLIPSpec:
    dim, res = CLIP_DIMS[model]
    return CLIPSpec(_ganbench_name(model), "images", "clip", None,
                    f"torch-fidelity TF1.x-compatible bilinear to {res}x{res}, CLIP mean/std; 1 channel repeated to 3",
                    fidelity_name=f"ganbench-{model}", model=model)


def _dinov2_spec(model: str) -> DINOv2Spec:
    return DINOv2Spec(_ganbench_name(model), "images", "dinov2", None,
                      "torch-fidelity TF1.x-compatible bilinear to 224x224, ImageNet mean/std; 1 channel repeated to 3",
                      fidelity_name=f"ganbench-{model}", model=model)


CLIP_SPECS = {model: _clip_spec(model) for model in CLIP_URLS}  # torch-fidelity name -> spec
DINOV2_SPECS = {model: _dinov2_spec(model) for model in DINOV2_METADATA}
CLIP_VIT_B_32 = CLIP_SPECS["clip-vit-b-32"]
DINOV2_VIT_S_14 = DINOV2_SPECS["dinov2-vit-s-14"]


def _description(spec: FoundationSpec) -> str:
    if isinstance(spec, CLIPSpec):
        dim, res = CLIP_DIMS[spec.model]
        return (f"CLIP {CLIP_METADATA[spec.model]['filename']} image embedding ({dim}-d, {res}x{res} input; "
                f"Radford et al. 2021) via torch-fidelity {spec.model!r}; for FID/KID in CLIP space "
                "(Kynkaanniemi et al. 2023)")
    dim = DINOV2_ARCHS[spec.model][0]
    return (f"DINOv2 {DINOV2_METADATA[spec.model]} class token ({dim}-d, 224x224 input; Oquab et al. 2023) via "
            f"torch-fidelity {spec.model!r} forward, weights loaded without torch.hub code (Stein et al. 2023)")


def register_foundation_extractors(registry: Any) -> list[str]:
    """Register every CLIP and DINOv2 spec in ``registry`` (ganbench's ``EXTRACTORS``), and ganbench's classes in
    torch-fidelity's feature-extractor registry as ``"ganbench-<model>"``.

    Names already present in either registry are left alone, so calling this twice is harmless.

    Args:
        registry: A ``ganbench.registry.Registry`` of extractors.

    Returns:
        The ganbench names registered by this call.
    """
    import torch_fidelity
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    added = []
    for spec in [*CLIP_SPECS.values(), *DINOV2_SPECS.values()]:
        if spec.fidelity_name not in FEATURE_EXTRACTORS_REGISTRY:
            torch_fidelity.register_feature_extractor(spec.fidelity_name, spec.extractor_class)
        if spec.name not in registry:
            registry.register(spec.name, spec, input_kind="images", description=_description(spec))
            added.append(spec.name)
    return added


__all__ = ["CLIPFeatureExtractor", "CLIPSpec", "CLIP_SPECS", "CLIP_VIT_B_32", "DINOv2FeatureExtractor", "DINOv2Spec",
           "DINOV2_SPECS", "DINOV2_VIT_S_14", "DinoVisionTransformer", "FoundationSpec", "OFFLINE_ENVS",
           "PROBE_TIMEOUT_S", "WeightsFile", "clip_weights", "dinov2_weights", "host_reachable", "hub_checkpoints_dir",
           "load_state_dict", "offline_by_env", "register_foundation_extractors", "weights_sha256"]
