"""Training of the translation models through the one training loop: step functions against closed forms of their
references' losses, the image pool's behaviour, learning on a task with a known answer, and resume equal to an
uninterrupted run."""

import copy
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from ganbench.data import Split
from ganbench.data.translation import TranslationSplit
from ganbench.train.loop import CheckpointMismatch, TrainConfig, train
from ganbench.zoo import cyclegan, discogan, get_model, load_generator, pix2pix
from ganbench.zoo.base import StepContext
from ganbench.zoo.cyclegan import CycleGANConfig, cyclegan_step
from ganbench.zoo.discogan import DiscoGANConfig, discogan_rate, discogan_step
from ganbench.zoo.pix2pix import Pix2PixConfig, pix2pix_step
from ganbench.zoo.translator import ImagePool, Translator


def smooth_fields(n: int, seed: int, res: int = 32) -> torch.Tensor:
    """uint8 (n, 1, res, res) smooth random gray-level images (bicubically upsampled 6x6 noise)."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(n, 1, 6, 6, generator=g), size=(res, res), mode="bicubic", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def unit(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1


def pairs(a: torch.Tensor, b: torch.Tensor, paired: bool = True, name: str = "inversion") -> TranslationSplit:
    """A training split of the two domains (aligned pairs, or two image sets)."""
    return TranslationSplit(name, "train", a, b, paired, "none", "generated in the test")


def training_state(method: str, cfg, seed: int = 0):
    """The networks, optimizers and pools the loop builds for ``method`` (initialised from ``seed``)."""
    torch.manual_seed(seed)
    return get_model(method).setup_training(cfg, TrainConfig())


def context(state, a, b, step, generator, cfg) -> StepContext:
    return StepContext(state, {"a": a, "b": b}, step, generator, cfg, TrainConfig())


# --- image pool ----------------------------------------------------------------------------------------------


def test_image_pool_fills_then_swaps_half_of_the_images_for_history():
    pool, g = ImagePool(50), torch.Generator().manual_seed(0)
    ids = lambda batch: [int(im[0, 0, 0]) for im in batch]  # noqa: E731 - each image is filled with its id
    make = lambda start, n: torch.arange(start, start + n).float().view(n, 1, 1, 1).expand(n, 1, 2, 2)  # noqa: E731
    for start in range(0, 48, 4):  # until full, every image goes in and comes back as it is
        assert ids(pool.query(make(start, 4), g)) == list(range(start, start + 4))
    assert ids(pool.query(make(48, 2), g)) == [48, 49]
    stored = set(range(50))
    assert set(ids(pool.state())) == stored and pool.count == 50
    history, n, next_id = 0, 0, 1000
    for _ in range(500):
        batch = make(next_id, 4)
        out = ids(pool.query(batch, g))
        for new, got in zip(range(next_id, next_id + 4), out):
            n += 1
            if got != new:  # a stored image came back and the new one took its place
                assert got in stored
                stored.remove(got)
                stored.add(new)
                history += 1
        next_id += 4
        assert pool.count == 50 and len(pool.state()) == 50
    assert set(ids(pool.state())) == stored  # exactly the images the swaps say it holds
    assert abs(history / n - 0.5) < 0.04  # 2000 coin flips: 0.5 within 3.6 standard deviations


def test_image_pool_of_size_zero_passes_batches_through_and_is_reproducible():
    x = torch.randn(3, 1, 4, 4)
    assert torch.equal(ImagePool(0).query(x, torch.Generator()), x)
    runs = []
    for _ in range(2):
        pool, g = ImagePool(5), torch.Generator().manual_seed(7)
        runs.append(torch.cat([pool.query(torch.full((4, 1, 2, 2), float(i)), g) for i in range(10)]))
    assert torch.equal(runs[0], runs[1])
    with pytest.raises(ValueError, match=">= 0"):
        ImagePool(-1)


# --- step functions against their references' losses ---------------------------------------------------------


def batch_pair(channels=1, res=32, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, channels, res, res, generator=g) * 2 - 1 for _ in range(2))


def adam_first_step_direction(params_before, params_after, grads, lr=2e-4, tol=1e-4):
    """Adam's first update is -lr * g / (|g| + eps): the sign of the expected gradient, where it is not tiny."""
    agree = total = 0
    for p0, p1, g in zip(params_before, params_after, grads):
        mask = g.abs() > tol
        agree += torch.isclose(p1 - p0, -lr * torch.sign(g), atol=1e-7)[mask].sum().item()
        total += mask.sum().item()
    return agree / total


def test_pix2pix_step_is_halved_bce_for_d_then_gan_plus_100_l1_for_g():
    cfg = Pix2PixConfig(**{**pix2pix.PRESETS["tiny"], "ngf": 8, "ndf": 8})
    s = training_state("pix2pix", cfg)
    a, b = batch_pair()
    G0, D0 = copy.deepcopy(s.nets["G_ab"]), copy.deepcopy(s.nets["D"])
    row = pix2pix_step(context(s, a, b, 0, torch.Generator().manual_seed(0), cfg))
    with torch.no_grad():
        fake = G0(a)
        d_real, d_fake = D0(a, b), D0(a, fake)
        want_d = 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                        + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    assert row["loss_d"] == pytest.approx(want_d.item(), rel=1e-5)
    assert row["l1"] == pytest.approx((fake - b).abs().mean().item(), rel=1e-5)
    # G's gradient is taken through the already updated D, with L1 weighted 100.
    D1 = copy.deepcopy(s.nets["D"]).requires_grad_(False)
    G0.zero_grad()
    pred = D1(a, G0(a))
    gan = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))
    assert row["loss_g_gan"] == pytest.approx(gan.item(), rel=1e-5)
    before = [p.detach().clone() for p in G0.parameters()]
    grads100 = torch.autograd.grad(gan + 100 * F.l1_loss(G0(a), b), list(G0.parameters()), retain_graph=True)
    grads1 = torch.autograd.grad(gan + 1 * F.l1_loss(G0(a), b), list(G0.parameters()))
    after = [p.detach() for p in s.nets["G_ab"].parameters()]
    assert adam_first_step_direction(before, after, grads100) > 0.999
    assert adam_first_step_direction(before, after, grads1) < 0.95  # the check can tell the weights apart


def test_cyclegan_step_uses_least_squares_cycle_10_identity_5_and_halved_d_losses():
    cfg = CycleGANConfig(**{**cyclegan.PRESETS["tiny"], "ngf": 8, "ndf": 8, "n_blocks": 1})
    s = training_state("cyclegan", cfg)
    a, b = batch_pair()
    G_ab, G_ba, D_a, D_b = (copy.deepcopy(s.nets[k]) for k in ("G_ab", "G_ba", "D_a", "D_b"))
    row = cyclegan_step(context(s, a, b, 0, torch.Generator().manual_seed(0), cfg))
    with torch.no_grad():
        fake_b, fake_a = G_ab(a), G_ba(b)
        want = {"cycle_a": 10 * (G_ba(fake_b) - a).abs().mean(), "cycle_b": 10 * (G_ab(fake_a) - b).abs().mean(),
                "idt_b": 5 * (G_ab(b) - b).abs().mean(), "idt_a": 5 * (G_ba(a) - a).abs().mean(),
                "gan_ab": ((D_b(fake_b) - 1) ** 2).mean(), "gan_ba": ((D_a(fake_a) - 1) ** 2).mean(),
                # while the pool fills it returns the fresh fakes, so D sees exactly G's pre-update output
                "loss_d_b": 0.5 * ((D_b(b) - 1) ** 2).mean() + 0.5 * (D_b(fake_b) ** 2).mean(),
                "loss_d_a": 0.5 * ((D_a(a) - 1) ** 2).mean() + 0.5 * (D_a(fake_a) ** 2).mean()}
    for key, value in want.items():
        assert row[key] == pytest.approx(value.item(), rel=1e-5), key
    assert s.extras["pool.a"].count == s.extras["pool.b"].count == 4
    no_idt_cfg = dataclasses.replace(cfg, lambda_identity=0)
    no_idt = training_state("cyclegan", no_idt_cfg)
    assert cyclegan_step(context(no_idt, a, b, 0, torch.Generator(), no_idt_cfg))["idt_a"] == 0.0


def test_discogan_step_alternates_d_and_g_with_the_reference_loss_weights():
    cfg = DiscoGANConfig(**{**discogan.PRESETS["tiny"], "ngf": 8, "ndf": 8, "gan_curriculum": 2})
    s = training_state("discogan", cfg)
    a, b = batch_pair()
    params = lambda keys: [p.detach().clone() for k in keys for p in s.nets[k].parameters()]  # noqa: E731
    changed = lambda old, keys: any(not torch.equal(p, q) for p, q in zip(old, params(keys)))  # noqa: E731
    G_ab, G_ba, D_a, D_b = (copy.deepcopy(s.nets[k]) for k in ("G_ab", "G_ba", "D_a", "D_b"))
    g0, d0 = params(["G_ab", "G_ba"]), params(["D_a", "D_b"])
    row = discogan_step(context(s, a, b, 0, torch.Generator(), cfg))
    assert row["updated"] == 0.0 and changed(d0, ["D_a", "D_b"]) and not changed(g0, ["G_ab", "G_ba"])
    with torch.no_grad():
        ab, ba = G_ab(a), G_ba(b)
        ra, fa = D_a(a)
        pa, ffa = D_a(ba)
        rb, fb = D_b(b)
        pb, ffb = D_b(ab)
        want = {"recon_a": (((G_ba(ab) - a) / 2) ** 2).mean(),  # the reference's MSE over [0, 1] pixels
                "loss_d_a": 0.5 * F.binary_cross_entropy(torch.sigmoid(ra), torch.ones(4))
                + 0.5 * F.binary_cross_entropy(torch.sigmoid(pa), torch.zeros(4)),
                "gan_ab": F.binary_cross_entropy(torch.sigmoid(pb), torch.ones(4)),
                "fm_b": sum(((r.mean(0) - f.mean(0)) ** 2).mean() for r, f in zip(fb, ffb)),
                "fm_a": sum(((r.mean(0) - f.mean(0)) ** 2).mean() for r, f in zip(fa, ffa))}
    for key, value in want.items():
        assert row[key] == pytest.approx(value.item(), rel=1e-4), key
    assert row["rate"] == 0.01

    # Step 1 updates the generators only, with (0.1 GAN + 0.9 FM) x (1 - rate) + reconstruction x rate.
    nets = {k: copy.deepcopy(s.nets[k]) for k in ("G_ab", "G_ba", "D_a", "D_b")}
    g1, d1 = params(["G_ab", "G_ba"]), params(["D_a", "D_b"])
    row = discogan_step(context(s, a, b, 1, torch.Generator(), cfg))
    assert row["updated"] == 1.0 and changed(g1, ["G_ab", "G_ba"]) and not changed(d1, ["D_a", "D_b"])
    ab, ba = nets["G_ab"](a), nets["G_ba"](b)
    ra, fa = nets["D_a"](a)
    pa, ffa = nets["D_a"](ba)
    rb, fb = nets["D_b"](b)
    pb, ffb = nets["D_b"](ab)
    gan = lambda p: F.binary_cross_entropy_with_logits(p, torch.ones_like(p))  # noqa: E731
    fm = lambda r, f: sum(((x.mean(0) - y.mean(0)) ** 2).mean() for x, y in zip(r, f))  # noqa: E731
    rate = 0.01
    total = ((0.1 * gan(pb) + 0.9 * fm(fb, ffb)) * (1 - rate) + F.mse_loss(nets["G_ba"](ab), a) / 4 * rate
             + (0.1 * gan(pa) + 0.9 * fm(fa, ffa)) * (1 - rate) + F.mse_loss(nets["G_ab"](ba), b) / 4 * rate)
    gen_params = [p for k in ("G_ab", "G_ba") for p in nets[k].parameters()]
    grads = torch.autograd.grad(total, gen_params)
    grads = [g + cfg.weight_decay * p.detach() for g, p in zip(grads, gen_params)]  # Adam's L2 weight decay
    assert adam_first_step_direction(g1, params(["G_ab", "G_ba"]), grads) > 0.999
    assert discogan_step(context(s, a, b, 2, torch.Generator(), cfg))["rate"] == 0.5  # the curriculum is over
    assert [discogan_rate(cfg, t) for t in range(4)] == [0.01, 0.01, 0.5, 0.5]


def test_linear_decay_follows_the_reference_rule():
    cfg = TrainConfig(steps=10, decay_steps=4)
    # n_epochs = 6 constant, n_epochs_decay = 4: lr_l = 1 - max(0, t + 1 - 6) / 5
    assert [cfg.lr_factor(t) for t in range(10)] == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    assert TrainConfig(steps=200).lr_factor(123) == 1.0  # no decay: the learning rate as given
    with pytest.raises(ValueError, match="decay_steps"):
        TrainConfig(steps=3, decay_steps=4)


def test_the_loop_applies_the_decay_to_every_optimizer(tmp_path):
    """The learning rates of the last step, as the checkpoint records them: each base rate times the factor of
    step 5 of 6 with 2 decay steps (1 - 2/3)."""
    config = {**cyclegan.PRESETS["tiny"], "ngf": 4, "ndf": 4, "n_blocks": 1}
    split = pairs(smooth_fields(8, 0), smooth_fields(8, 1), paired=False)
    cfg = TrainConfig(steps=6, batch_size=2, decay_steps=2, lr_g=1e-3)
    train(get_model("cyclegan"), split, tmp_path, cfg, config, progress=False)
    with safe_open(str(tmp_path / "checkpoint.safetensors"), "pt") as f:
        meta = f.metadata()
    assert cfg.lr_factor(5) == pytest.approx(1 / 3)
    for name, base in (("opt_g", 1e-3), ("opt_d", 2e-4)):
        (group,) = json.loads(meta[f"{name}_groups"])
        assert group["lr"] == pytest.approx(base / 3, rel=1e-12) and group["initial_lr"] == base


# --- the trainer ---------------------------------------------------------------------------------------------


def test_tiny_pix2pix_learns_an_inversion_far_below_the_identity_and_best_constant(tmp_path):
    # b = 255 - a on smooth gray-level fields: trivially learnable, and neither the identity mapping nor any fixed
    # image (the per-pixel median of the training targets is the best in L1) comes close.
    A, At = smooth_fields(512, 0), smooth_fields(128, 1)
    B, Bt = 255 - A, 255 - At
    out = train(get_model("pix2pix"), pairs(A, B), tmp_path, TrainConfig(steps=80, batch_size=8, checkpoint_every=1000),
                pix2pix.PRESETS["tiny"], progress=False, device="cpu")
    assert isinstance(out.generator, Translator) and out.weights_path == tmp_path / "generator.safetensors"
    model = (unit(out.generator.translate(At)) - unit(Bt)).abs().mean().item()
    identity = (unit(At) - unit(Bt)).abs().mean().item()
    constant = (unit(B).median(0).values - unit(Bt)).abs().mean().item()
    assert identity > 0.8 and constant > 0.4  # the oracles are far from the answer
    assert model < 0.25 * identity and model < 0.5 * constant
    assert [r["step"] for r in out.losses] == list(range(1, 81))
    assert torch.equal(load_generator(out.weights_path).translate(At), out.generator.translate(At))
    assert (tmp_path / "losses.csv").read_text().splitlines()[0] == "step,loss_d,loss_g_gan,l1,d_real,d_fake"


RESUME_CASES = [
    # 64 px gives the U-Net one dropout block: resume must replay its noise.
    ("pix2pix", {"resolution": 64, "in_channels": 1, "out_channels": 1, "ngf": 4, "ndf": 4, "n_layers_d": 2}, 64),
    # A 3-image pool is full after the first step, so its coin flips and contents must survive the restart.
    ("cyclegan", {**cyclegan.PRESETS["tiny"], "ngf": 4, "ndf": 4, "n_blocks": 1, "pool_size": 3}, 32),
    # D steps at 0 and 3, the curriculum ends at step 4.
    ("discogan", {**discogan.PRESETS["tiny"], "ngf": 4, "ndf": 4, "gan_curriculum": 4}, 32),
]


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("method,config,res", RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_resumed_run_equals_the_uninterrupted_run(tmp_path, method, config, res):
    entry = get_model(method)
    data = pairs(smooth_fields(16, 0, res), 255 - smooth_fields(16, 1, res), paired=method == "pix2pix")
    cfg = TrainConfig(steps=6, batch_size=2, seed=3, checkpoint_every=3, decay_steps=2)
    full = train(entry, data, tmp_path / "full", cfg, config, progress=False, device="cpu")

    step = entry.step_function()

    def crash_at_step_4(ctx):
        if ctx.step == 4:
            raise Interrupted
        return step(ctx)

    with pytest.raises(Interrupted):  # killed during step 5, after the checkpoint at step 3
        train(dataclasses.replace(entry, train_step=crash_at_step_4), data, tmp_path / "part", cfg, config,
              progress=False, device="cpu")
    resumed = train(entry, data, tmp_path / "part", cfg, config, resume=True, progress=False, device="cpu")
    assert resumed.resumed_from == 3 and full.resumed_from == 0
    want = load_file(tmp_path / "full" / "checkpoint.safetensors")
    got = load_file(tmp_path / "part" / "checkpoint.safetensors")
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert (tmp_path / "full" / "losses.csv").read_text() == (tmp_path / "part" / "losses.csv").read_text()
    assert resumed.generator.weights_sha256 == full.generator.weights_sha256
    # The check can fail: another seed gives other weights.
    other = train(entry, data, tmp_path / "other", dataclasses.replace(cfg, seed=4), config, progress=False,
                  device="cpu")
    assert other.generator.weights_sha256 != full.generator.weights_sha256


def test_existing_checkpoints_are_neither_overwritten_nor_resumed_with_other_settings(tmp_path):
    config = {**cyclegan.PRESETS["tiny"], "ngf": 4, "ndf": 4, "n_blocks": 1}
    data = pairs(smooth_fields(8, 0), smooth_fields(8, 1), paired=False)
    run = lambda: train(get_model("cyclegan"), data, tmp_path, TrainConfig(steps=1, batch_size=2),  # noqa: E731
                        config, progress=False, device="cpu")
    run()
    with pytest.raises(FileExistsError, match="resume"):
        run()
    with pytest.raises(CheckpointMismatch, match="train_config"):
        train(get_model("cyclegan"), data, tmp_path, TrainConfig(steps=2, batch_size=2, lr_g=1e-3), config,
              resume=True, progress=False, device="cpu")


def split(name, data):
    return Split(dataset=name, split="train", data=data, labels=None, resize="none", source="test")


def zeros(n, channels=1, side=32):
    return torch.zeros(n, channels, side, side, dtype=torch.uint8)


@pytest.mark.parametrize("method,data,match", [
    ("pix2pix", pairs(zeros(5), zeros(4), paired=False, name="edges2digits"),
     r"model 'pix2pix' trains on paired data, dataset 'edges2digits' \(train\) has unpaired"),
    ("pix2pix", split("digits", zeros(4)),
     r"model 'pix2pix' trains on paired data, dataset 'digits' \(train\) has images"),
    ("pix2pix", pairs(zeros(4, side=16), zeros(4, side=16), name="edges"),
     r"domain A of edges/train has \(16, 16\) images but the config has resolution=32"),
    ("cyclegan", pairs(zeros(4), zeros(4, channels=3), paired=False, name="mnist2photos"),
     r"domain B of mnist2photos/train has 3-channel images but the config has out_channels=1"),
])
def test_domains_that_do_not_fit_are_rejected_naming_the_data(tmp_path, method, data, match):
    config = {"pix2pix": pix2pix.PRESETS, "cyclegan": cyclegan.PRESETS, "discogan": discogan.PRESETS}[method]["tiny"]
    with pytest.raises(ValueError, match=match):
        train(get_model(method), data, tmp_path, TrainConfig(steps=1), config, progress=False)
    assert not (tmp_path / "checkpoint.safetensors").exists()


def test_translation_splits_refuse_unaligned_pairs_and_non_uint8_images():
    with pytest.raises(ValueError, match=r"edges/train: paired domains must have equal counts and sizes"):
        pairs(zeros(5), zeros(4), name="edges")
    with pytest.raises(ValueError, match=r"domain A must be uint8 NCHW"):
        pairs(torch.zeros(4, 1, 32, 32), zeros(4), paired=False)


def test_unknown_methods_and_config_fields_are_named(tmp_path):
    with pytest.raises(KeyError, match="Valid models: .*cyclegan, .*discogan, .*pix2pix"):
        get_model("stargan")
    with pytest.raises(ValueError, match="no config field.*'ngff'"):
        train(get_model("pix2pix"), pairs(zeros(1, 3, 256), zeros(1, 3, 256)), tmp_path, TrainConfig(steps=1),
              {"ngff": 3}, progress=False)
    assert not list(tmp_path.iterdir())  # refused before anything was written
