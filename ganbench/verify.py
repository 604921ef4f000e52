"""Reproduction check of a named weight set: fetch it, score it with its card's protocol, compare with the card.

This is what ``ganbench verify arch.tag`` runs. The evaluation is ``ganbench.evaluate.evaluate`` with the
protocol ``ganbench eval`` would build from the same settings (dataset split, extractor, metrics, sample count and
seed), so a card's expected scores are the numbers a user gets from the same weights through the public path.
Like ``evaluate``, this module sits between the zoo and the metrics; the zoo itself never imports metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from ganbench.evaluate import Protocol, Row, evaluate
from ganbench.results.schema import Result
from ganbench.zoo.cards import CardError, ModelCard, load_card
from ganbench.zoo.fetch import load_weights


@dataclass(frozen=True)
class ScoreCheck:
    """One expected score against the measured one."""

    score: str  # score name in the result ("fid", "ms_ssim", ...)
    expected: float  # the card's value
    tol: float  # the card's absolute tolerance
    actual: float | None  # measured value (None: the evaluation did not produce this score)

    @property
    def ok(self) -> bool:
        return self.actual is not None and abs(self.actual - self.expected) <= self.tol

    def describe(self) -> str:
        got = "missing" if self.actual is None else f"{self.actual:.6g} (off by {self.actual - self.expected:+.3g})"
        return f"{self.score}: expected {self.expected:.6g} ± {self.tol:.3g}, got {got}"


@dataclass(frozen=True)
class VerifyReport:
    card: ModelCard
    result: Result  # the full evaluation, with provenance
    checks: tuple[ScoreCheck, ...]  # one per expected score, in the card's order

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[ScoreCheck]:
        return [c for c in self.checks if not c.ok]


def evaluate_card(card: ModelCard, progress: bool = False, download: bool = True) -> Result:
    """Fetch ``card``'s weights and score them with its protocol.

    Raises:
        CardError: The card has no ``[protocol]``.
    """
    p = card.protocol
    if p is None:
        raise CardError(f"model card {str(card.path)!r}: key 'protocol': missing, so there is nothing to evaluate")
    generator = load_weights(card, download)
    protocol = Protocol(p.dataset, p.extractor, p.n_samples, p.seed, p.resolution, p.reference_split,
                        p.heldout_split or None, tuple(p.metrics))
    run_id = f"verify_{card.name.replace('.', '_')}_{card.sha256[:8]}-{p.dataset}-s{p.seed}"
    return evaluate(protocol, model=generator, row=Row(name=card.name, run_id=run_id), progress=progress)


def verify(card: str | ModelCard, progress: bool = False, download: bool = True) -> VerifyReport:
    """Fetch, evaluate with the card's protocol, and compare every expected score within its tolerance.

    Args:
        card: "arch.tag", or a parsed card.
        progress: Show feature-extraction progress bars on stderr.
        download: Allow downloads while fetching.

    Raises:
        CardError: The card has no protocol or no expected scores.
        (and whatever ``fetch`` raises when the weights cannot be had or fail their sha256)
    """
    card = load_card(card) if isinstance(card, str) else card
    if not card.expected:
        raise CardError(f"model card {str(card.path)!r}: key 'expected': missing or empty, so there is nothing "
                        "to verify")
    result = evaluate_card(card, progress, download)
    checks = tuple(ScoreCheck(name, exp.value, exp.tol, result.scores[name].value if name in result.scores else None)
                   for name, exp in card.expected.items())
    return VerifyReport(card, result, checks)


__all__ = ["ScoreCheck", "VerifyReport", "evaluate_card", "verify"]
