"""Models from users: a generator in a Python file (``path/to/file.py:MyGenerator``), or one that an installed
package declares in the ``ganbench.models`` entry-point group, evaluated without editing ganbench.

The contract is torch-fidelity's ``GenerativeModelBase`` reduced to ganbench's: an object with
``sample(n, seed)`` that returns ``n`` samples as a ``torch.Tensor``, either uint8 images N x C x H x W
(C = 1 or 3, square, values 0..255) or float (N, 2) points for the 2D sets, the same samples for the same
seed. ``FILE.py:NAME`` names a class constructed with no arguments, a function with no required arguments
that returns such an object (a factory), or such an object itself. Optional attributes of the object:

- ``task``: task kind recorded in the result (default ``"unconditional"``);
- ``config``: a dict (or dataclass) of hyper-parameters recorded in the result;
- ``weights_path``: the file whose sha256 identifies the model; without it the sha256 of the Python file
  defining the object identifies it (the code is the model).

The samples are validated (type, dtype, shape, count, determinism in ``seed``: every draw is made twice and the
two must be equal) before anything is scored, and every violation is named in the error. User code runs guarded:
whatever it raises while being imported, constructed or sampled (``SystemExit`` and ``KeyboardInterrupt``
included) becomes a ``UserModelError``, so a model cannot end the process with a success code or pass a gate by
exiting; a draw that takes longer than the generator's ``timeout`` (seconds) is stopped the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import contextlib
import inspect
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch

from ganbench.registry import MODELS
from ganbench.results.store import file_sha256


class UserModelError(ValueError):
    """A user's model cannot be loaded or breaks the sampling contract; the message says what was expected."""


class _Timeout(BaseException):
    """Raised inside user code when its time is up (a BaseException, so the user's ``except Exception`` cannot
    swallow it)."""


T = TypeVar("T")


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (a SIGALRM timer; only in the main thread, elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def guarded(call: Callable[[], T], source: str, what: str, timeout: float | None = None) -> T:
    """``call()`` with everything user code may raise turned into a ``UserModelError`` naming the model and the step:
    ordinary exceptions, ``SystemExit`` (a ``sys.exit`` in the model), ``KeyboardInterrupt``, and running past
    ``timeout`` seconds."""
    try:
        with _deadline(timeout):
            return call()
    except UserModelError:
        raise
    except _Timeout:
        raise UserModelError(f"{source}: {what} did not finish within {timeout:g} s (--timeout)") from None
    except SystemExit as e:
        raise UserModelError(f"{source}: {what} called sys.exit({e.code!r}); a model must return its samples, not "
                             f"end the process") from None
    except KeyboardInterrupt:
        raise UserModelError(f"{source}: {what} was interrupted (KeyboardInterrupt)") from None
    except Exception as e:  # noqa: BLE001  (any failure of user code is reported, never a traceback)
        raise UserModelError(f"{source}: {what} raised {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class UserModelEntry:
    """What the evaluation reads from a model entry, for a model ganbench did not define."""

    name: str  # file-name-safe model name recorded in results and run ids
    task: str  # task kind
    data_kind: str  # "images" or "points", found from the samples
    source: str  # "path/to/file.py:NAME" or "entry point NAME (module:attr)"


class UserGenerator:
    """A user's generator behind ganbench's ``Generator`` interface: ``entry``, ``config``, ``weights_sha256``,
    ``data_kind`` and a ``sample(n, seed)`` whose output is validated on every call."""

    def __init__(self, obj: Any, entry: UserModelEntry, config: dict[str, Any], weights_sha256: str,
                 timeout: float | None = None):
        self.obj = obj
        self.entry = entry
        self.config = config
        self.weights_sha256 = weights_sha256
        self.timeout = timeout  # seconds one draw may take; None: no limit
        self.name = entry.name

    @property
    def data_kind(self) -> str:
        return self.entry.data_kind

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """``n`` validated samples; the draw is made twice and must repeat exactly (the contract: same seed, same
        samples)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UserModelError(f"{self.entry.source}: the sample count must be a positive integer, got {n!r}")
        source = self.entry.source
        out, again = (guarded(lambda: _draw(self.obj, n, seed), source, f"sample({n}, seed={seed})", self.timeout)
                      for _ in range(2))
        kind = check_samples(out, n, source)
        check_samples(again, n, source)
        if kind != self.entry.data_kind:
            raise UserModelError(f"{source}: sample() returned {kind} now and {self.entry.data_kind} before")
        if not torch.equal(out, again):
            raise UserModelError(f"{source}: sample({n}, seed={seed}) returned different samples on two calls; the "
                                 f"contract needs the same samples for the same seed (draw latents from "
                                 f"torch.Generator().manual_seed(seed))")
        return out


def _draw(obj: Any, n: int, seed: int) -> Any:
    with torch.no_grad():
        return obj.sample(n, seed)


def check_samples(x: Any, n: int, source: str) -> str:
    """The data kind ("images" or "points") of ``x``, or a UserModelError saying how it breaks the contract."""
    expected = "uint8 images N x C x H x W (C = 1 or 3, H = W) or float (N, 2) points as a torch.Tensor"
    if not isinstance(x, torch.Tensor):
        hint = " (wrap it with torch.from_numpy)" if type(x).__module__ == "numpy" else ""
        raise UserModelError(f"{source}: sample({n}, seed) returned {type(x).__module__}.{type(x).__name__}{hint}; "
                             f"expected {expected}")
    shape = tuple(x.shape)
    if x.dtype == torch.uint8:
        if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[2] != x.shape[3]:
            raise UserModelError(f"{source}: sample({n}, seed) returned uint8 of shape {shape}; expected N x C x H x W "
                                 f"with C = 1 or 3 and H = W (channels first: permute(0, 3, 1, 2) if channels last)")
        kind = "images"
    elif x.is_floating_point() and x.dim() == 2 and x.shape[1] == 2:
        kind = "points"
    else:
        scale = " (images are uint8 in 0..255: ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8) for [-1, 1])" \
            if x.is_floating_point() and x.dim() == 4 else ""
        raise UserModelError(f"{source}: sample({n}, seed) returned {x.dtype} of shape {shape}; expected {expected}{scale}")
    if x.shape[0] != n:
        raise UserModelError(f"{source}: sample({n}, seed) returned {x.shape[0]} samples; expected exactly {n}")
    if kind == "points" and not torch.isfinite(x).all():
        raise UserModelError(f"{source}: sample({n}, seed) returned non-finite points")
    return kind


def _import_file(path: Path) -> Any:
    # A unique module name per file content, so two files of the same name (or an edited file) never collide.
    digest = hashlib.sha256(str(path.resolve()).encode() + path.read_bytes()).hexdigest()[:12]
    name = f"ganbench_user_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserModelError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here while it executes
    try:
        guarded(lambda: spec.loader.exec_module(module), str(path), "importing the file")
    except UserModelError:
        del sys.modules[name]
        raise
    return module


def _attribute(module: Any, attr: str, source: str) -> Any:
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            own = sorted(n for n, v in vars(module).items() if not n.startswith("_") and not inspect.ismodule(v)
                         and getattr(v, "__module__", module.__name__) == module.__name__)
            close = difflib.get_close_matches(attr, own, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UserModelError(f"{source}: {getattr(module, '__file__', module)} has no attribute {attr!r}; it "
                                 f"defines {', '.join(own) or 'nothing public'}.{hint}")
        obj = getattr(obj, part)
    return obj


def _instantiate(target: Any, source: str) -> Any:
    """The generator object: ``target`` itself if it samples, else ``target()`` (a class or a factory)."""
    if not inspect.isclass(target) and callable(getattr(target, "sample", None)):
        return target
    if not callable(target):
        raise UserModelError(f"{source} is a {type(target).__name__}; expected a generator class, a factory "
                             f"function or an object with a sample(n, seed) method")
    required = [p.name for p in inspect.signature(target).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                                       p.KEYWORD_ONLY)]
    if required:
        raise UserModelError(f"{source} needs arguments {required} to be constructed; give them defaults, or name a "
                             f"factory function without arguments that builds the generator (FILE.py:make_generator)")
    obj = guarded(target, source, "constructing the generator")
    if not callable(getattr(obj, "sample", None)):
        raise UserModelError(f"{source} built a {type(obj).__name__}, which has no sample(n, seed) method")
    return obj


def _config(obj: Any) -> dict[str, Any]:
    cfg = getattr(obj, "config", None)
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    return dict(cfg) if isinstance(cfg, dict) else {}


def wrap_generator(obj: Any, name: str, source: str, code_file: Path | None,
                   timeout: float | None = None) -> UserGenerator:
    """Validate ``obj`` against the sampling contract (a probe of 4 samples, twice with one seed) and wrap it."""
    probe, again = (guarded(lambda: _draw(obj, 4, 0), source, "sample(4, seed=0)", timeout) for _ in range(2))
    kind = check_samples(probe, 4, source)
    check_samples(again, 4, source)
    if not torch.equal(probe, again):
        raise UserModelError(f"{source}: sample(4, seed=0) returned different samples on two calls; the contract "
                             f"needs the same samples for the same seed (draw latents from torch.Generator().manual_seed(seed))")
    weights = getattr(obj, "weights_path", None)
    if weights is not None:
        if not Path(weights).is_file():
            raise UserModelError(f"{source}: weights_path {str(weights)!r} is not a file")
        sha = file_sha256(weights)
    elif code_file is not None:
        sha = file_sha256(code_file)
    else:
        raise UserModelError(f"{source}: cannot identify the model: set weights_path on the generator")
    config = {"source": source, **_config(obj)}
    if weights is not None:
        config["weights_path"] = str(weights)
    task = str(getattr(obj, "task", "unconditional"))
    safe = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "user_model"
    return UserGenerator(obj, UserModelEntry(safe, task, kind, source), config, sha, timeout)


def load_from_file(spec: str, timeout: float | None = None) -> UserGenerator:
    """``path/to/file.py:NAME`` -> the validated generator."""
    file_part, _, attr = spec.rpartition(":")
    path = Path(file_part)
    if not attr or not file_part.endswith(".py"):
        raise UserModelError(f"{spec!r}: expected FILE.py:NAME, e.g. examples/my_gan/my_gan.py:LinearGenerator")
    if not path.is_file():
        raise UserModelError(f"{spec!r}: the file {file_part!r} does not exist")
    module = _import_file(path)
    obj = _instantiate(_attribute(module, attr, spec), spec)
    return wrap_generator(obj, attr, spec, path, timeout)


def load_from_registry(name: str, timeout: float | None = None) -> UserGenerator:
    """A model an installed package registered under the ``ganbench.models`` entry-point group."""
    from ganbench.zoo.base import ModelEntry

    entry = MODELS.entry(name)
    target = guarded(entry.load, f"entry point {name}", "importing its module")
    if isinstance(target, ModelEntry):
        raise UserModelError(f"model {name!r} is an architecture to train, not a generator with weights: train it "
                             f"(ganbench train {name} ...) and evaluate its generator.safetensors")
    source = f"entry point {name} ({entry.meta.get('entry_point', name)})"
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    code = Path(module.__file__) if module is not None and getattr(module, "__file__", None) else None
    return wrap_generator(_instantiate(target, source), name, source, code, timeout)


def resolve_generator(source: str | Path, timeout: float | None = None) -> Any:
    """The generator a command-line SOURCE names.

    Args:
        source: a ganbench generator weights file (``generator.safetensors``), ``FILE.py:NAME``, or the name of
            a model an installed package registered in the ``ganbench.models`` entry-point group.
        timeout: Seconds a user model's draw may take (None: no limit).

    Raises:
        FileNotFoundError: If ``source`` is none of these.
        UserModelError: If a user's model cannot be loaded or breaks the sampling contract.
    """
    from ganbench.zoo import load_generator

    text = str(source)
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if text.rpartition(":")[0].endswith(".py"):
        return load_from_file(text, timeout)
    if Path(text).is_file():
        if text.endswith(".py"):
            raise UserModelError(f"{text!r}: name the generator in the file, e.g. {text}:MyGenerator")
        return load_generator(text)
    if text in MODELS:
        return load_from_registry(text, timeout)
    raise FileNotFoundError(f"{text!r} is not a generator weights file, a FILE.py:NAME, or a registered model "
                            f"({', '.join(MODELS.list())})")
