"""Model cards: the committed cards parse and carry what the issue asks; bad cards name the file and the key."""

import re

import pytest

from ganbench.zoo.cards import (CardError, FileSource, HubSource, PypiSource, UrlSource, card_names, load_card,
                                parse_card)

GOOD = """
name = "dcgan.t1"
arch = "dcgan"
license = "MIT"
paper = "Radford et al. 2015"
training_data = "nothing"
sha256 = "{sha}"
size = 10

[config]
resolution = 32

[sources]  # listed out of order on purpose: resolution order is fixed
pypi = {{ package = "somepkg", path = "somepkg/w.pth", version = "1.0" }}
url = "https://example.org/w.pth"
hub = {{ repo = "org/name", filename = "w.pth", revision = "abc" }}
file = "weights/w.pth"

[protocol]
dataset = "digits8"
extractor = "mnist_cnn"
n_samples = 50
metrics = ["prc"]

[expected]
precision = {{ value = 0.5, tol = 0.01 }}
"""
SHA = "ab" * 32


def _card(tmp_path, text, name="dcgan.t1"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_a_full_card_parses_with_sources_in_the_fixed_order(tmp_path):
    card = parse_card(_card(tmp_path, GOOD.format(sha=SHA)))
    assert card.name == "dcgan.t1" and card.tag == "t1" and card.arch == "dcgan" and card.size == 10
    assert [type(s) for s in card.sources] == [FileSource, PypiSource, HubSource, UrlSource]  # local first
    assert card.sources[2] == HubSource("org/name", "w.pth", "abc")
    assert card.convert is None
    assert card.protocol.n_samples == 50 and card.protocol.metrics == ("prc",) and card.protocol.seed == 0
    assert card.expected["precision"].holds(0.505) and not card.expected["precision"].holds(0.52)


@pytest.mark.parametrize("edit, key, problem", [
    (lambda t: t.replace('license = "MIT"\n', ""), "license", "required key is missing"),
    (lambda t: t.replace(SHA, "xyz"), "sha256", "64 lowercase hex"),
    (lambda t: t.replace("size = 10", "size = -3"), "size", "positive"),
    (lambda t: t.replace("size = 10", 'size = "10"'), "size", "expected int"),
    (lambda t: t.replace('arch = "dcgan"', 'arch = "lsgan"'), "arch", "not the arch part"),
    (lambda t: t.replace('paper =', 'papr = "x"\npaper ='), "papr", "unknown key"),
    (lambda t: t.replace('url = "https://example.org/w.pth"', 'url = "ftp://x/w.pth"'), "sources.url",
     "must start with"),
    (lambda t: t.replace('url = "https://example.org/w.pth"', 'url = "file:///tmp/w.pth"'), "sources.url", "outside"),
    (lambda t: t.replace('file = "weights/w.pth"', 'file = "../w.pth"'), "sources.file", "outside"),
    (lambda t: t.replace('filename = "w.pth"', 'filename = "a/../../w.pth"'), "sources.hub.filename", "'..'"),
    (lambda t: t.replace('repo = "org/name"', 'repo = "no slash"'), "sources.hub.repo", "repository id"),
    (lambda t: t.replace('path = "somepkg/w.pth", ', ""), "sources.pypi.path", "required key is missing"),
    (lambda t: t.replace("file = ", "disk = "), "sources.disk", "unknown key"),
    (lambda t: t.replace("n_samples = 50", "n_samples = true"), "protocol.n_samples", "expected int"),
    (lambda t: t.replace("tol = 0.01", "tol = -1"), "expected.precision.tol", "negative"),
    (lambda t: t.replace("value = 0.5, ", ""), "expected.precision.value", "required key is missing"),
    (lambda t: 'convert = "os:system"\n' + t, "convert", "valid converters: dcgan_tutorial, vintagify"),
    (lambda t: 'convert = "ganbench.zoo.dcgan:from_tutorial_checkpoint"\n' + t, "convert", "not a registered"),
])
def test_bad_cards_name_the_file_and_the_key(tmp_path, edit, key, problem):
    path = _card(tmp_path, edit(GOOD.format(sha=SHA)))
    with pytest.raises(CardError) as info:
        parse_card(path)
    msg = str(info.value)
    assert str(path) in msg and f"key {key!r}" in msg and problem in msg, msg


def test_a_card_names_a_registered_converter(tmp_path):
    card = parse_card(_card(tmp_path, 'convert = "dcgan_tutorial"\n' + GOOD.format(sha=SHA)))
    assert card.convert == "dcgan_tutorial"


def test_name_must_match_the_file_and_unknown_cards_list_the_valid_ones(tmp_path, monkeypatch):
    with pytest.raises(CardError, match="differs from the file name"):
        parse_card(_card(tmp_path, GOOD.format(sha=SHA), name="dcgan.other"))
    with pytest.raises(CardError, match="not valid TOML"):
        parse_card(_card(tmp_path, "name = ", name="dcgan.broken"))
    (tmp_path / "dcgan.binary.toml").write_bytes(b"\xff\xfe" + GOOD.format(sha=SHA).encode())
    with pytest.raises(CardError, match="not UTF-8"):
        parse_card(tmp_path / "dcgan.binary.toml")
    with pytest.raises(CardError, match=r"Did you mean 'dcgan.faces64'.*Valid weight sets: .*cdcgan.eyes128"):
        load_card("dcgan.face64")


@pytest.mark.parametrize("name", ["dcgan.faces64", "cdcgan.eyes128", "cyclegan.vintage256"])
def test_committed_third_party_cards_carry_license_hash_size_and_sources(name):
    card = load_card(name)
    assert name in card_names()
    assert card.license == "MIT" and re.fullmatch(r"[0-9a-f]{64}", card.sha256) and card.size > 1_000_000
    assert card.paper and card.training_data and card.description
    assert any(isinstance(s, PypiSource) and s.version for s in card.sources)
    assert card.convert in (None, "dcgan_tutorial", "vintagify")  # registry names, never code


def test_committed_cards_with_a_protocol_expect_scores():
    for name in card_names():
        card = load_card(name)
        if card.protocol is not None:
            assert card.expected, f"{name} has a protocol but no expected scores"
