import pytest

from ganbench.registry import MODELS, Registry, UnknownNameError


def test_register_get_list_and_aliases():
    reg = Registry("widget")
    reg.register("alpha", 1, aliases=("a",), colour="red")
    reg.register("beta", 2)

    @reg.register("gamma_2")
    def gamma():
        return 3

    assert reg.get("alpha") == 1 and reg.get("a") == 1
    assert reg.get("gamma_2")() == 3
    assert reg.meta("alpha") == {"colour": "red"}
    assert reg.list() == ["alpha", "beta", "gamma_2"]
    assert reg.list("g*") == ["gamma_2"]


def test_lazy_module_attr_is_imported_on_first_use():
    reg = Registry("thing")
    reg.register("join", "os.path:join")
    import os.path

    assert reg.entry("join").target == "os.path:join"
    assert reg.get("join") is os.path.join


@pytest.mark.parametrize("bad", ["Alpha", "with-dash", "", "sp ace"])
def test_invalid_names_are_refused(bad):
    with pytest.raises(ValueError, match="lowercase"):
        Registry("widget").register(bad, 1)


def test_duplicate_name_is_refused():
    reg = Registry("widget")
    reg.register("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)


def test_unknown_name_lists_closest_and_valid_names():
    import ganbench.zoo  # noqa: F401

    with pytest.raises(UnknownNameError) as e:
        MODELS.get("dcgna")
    msg = str(e.value)
    assert "Did you mean 'dcgan'" in msg
    assert "Valid models: " in msg and all(n in msg for n in ("dcgan", "lsgan", "mlpgan"))


def test_every_registry_finds_its_built_ins_on_the_first_lookup_in_a_fresh_interpreter():
    """A lookup never depends on which ganbench module the caller imported first (a test that asked PROTOCOLS for
    'fid10k' before anything imported ganbench.protocols found none). One fresh interpreter asks each registry in
    turn, protocols first; each lookup must succeed, whether or not an earlier one imported its module."""
    import subprocess
    import sys

    code = """
from ganbench import registry as r
for name, key in [("PROTOCOLS", "fid10k"), ("TASKS", "unconditional"), ("SUITES", "quick"), ("METRICS", "fid"),
                  ("EXTRACTORS", "mnist_cnn"), ("DATASETS", "mnist"), ("MODELS", "dcgan")]:
    reg = getattr(r, name)
    assert key in reg and reg.get(key) is not None, (name, reg.list())
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_registry_imports_its_built_ins_module_once_on_first_use(tmp_path, monkeypatch):
    import sys

    (tmp_path / "gb_test_builtins.py").write_text("from tests.test_registry import PLUGIN\nPLUGIN.register('one', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "gb_test_builtins" not in sys.modules and not PLUGIN._entries
    assert PLUGIN.get("one") == 1 and PLUGIN.list() == ["one"] and "one" in PLUGIN
    assert PLUGIN.builtins is None  # imported once; a second lookup does not import again
    sys.modules.pop("gb_test_builtins", None)


PLUGIN = Registry("thing", builtins="gb_test_builtins")
