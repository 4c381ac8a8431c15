import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.pipeline import ClassSet


def test_comma_list_each_name_its_own_prompt():
    cs = ClassSet.parse("building, road ,water")
    assert cs.names == ["building", "road", "water"]
    assert cs.prompt_table() == [(0, "building"), (1, "road"), (2, "water")]
    assert cs.background is None
    assert len(set(cs.colors)) == 3


def test_synonym_lines_and_background(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# my classes\nbuilding: building, roof, house\nroad: road, street\n"
                    "background: ground, grass\n")
    cs = ClassSet.from_file(path)
    assert cs.names == ["building", "road"]
    assert cs.classes[0].prompts == ("building", "roof", "house")
    assert cs.background is not None and cs.background.prompts == ("ground", "grass")
    assert cs.prompt_table()[-2:] == [(-1, "ground"), (-1, "grass")]


def test_bare_lines_mix_with_synonym_lines():
    cs = ClassSet.parse("building: roof, house\nroad\n")
    assert cs.to_dict() == {"building": ["roof", "house"], "road": ["road"]}


def test_yaml_file(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text("building: [building, rooftop]\nwater: water\n")
    cs = ClassSet.from_file(path, background=True)
    assert cs.to_dict() == {"building": ["building", "rooftop"], "water": ["water"],
                            "background": ["background", "bare ground", "grass"]}


def test_repeated_synonyms_are_collapsed():
    cs = ClassSet.from_names({"road": ["road", "Road", "  street  "]})
    assert cs.classes[0].prompts == ("road", "street")


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    (" , ", "empty"),
    ("building,road,Building", "duplicate class name"),
    ("building: roof\nbuilding: house", "duplicate class name"),
    ("bad|name", "not allowed"),
    ("a: b: c", "more than one ':'"),
    ("urban: building; water, lake", "several names without a ':'"),
    ("urban: x; : lake", "a class name is empty in entry ': lake'"),
    ("a: x; A: y", "duplicate class name 'A'"),
    ("; ;", "the class list is empty"),
    ("building: roof\n: road", "name is empty"),
])
def test_bad_class_lists(text, message):
    with pytest.raises(InputError, match=message):
        ClassSet.parse(text)


def test_missing_class_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ClassSet.from_file(tmp_path / "nope.txt")


def test_index_lookup_is_case_insensitive_and_unknown_is_clear():
    cs = ClassSet.parse("building,road")
    assert cs.index("ROAD") == 1
    with pytest.raises(InputError, match="known classes: building, road"):
        cs.index("water")


@pytest.mark.parametrize("text, expected", [
    ("urban: building, houses; water: lake", {"urban": ["building", "houses"], "water": ["lake"]}),
    ("building; road", {"building": ["building"], "road": ["road"]}),
    ("water:", {"water": ["water"]}),
    ("a: x, , y # comment\nb", {"a": ["x", "y"], "b": ["b"]}),
])
def test_inline_synonyms_with_semicolons(text, expected):
    assert ClassSet.parse(text).to_dict() == expected


def test_from_arg_reads_a_file_or_inline_text(tmp_path, monkeypatch):
    path = tmp_path / "classes.txt"
    path.write_text("building: roof, house\nroad\n")
    assert ClassSet.from_arg(str(path)).to_dict() == {"building": ["roof", "house"],
                                                      "road": ["road"]}
    monkeypatch.chdir(tmp_path)
    assert ClassSet.from_arg("classes.txt").names == ["building", "road"]
    (tmp_path / "c.yaml").write_text("water: [lake, river]\n")
    assert ClassSet.from_arg("c.yaml").to_dict() == {"water": ["lake", "river"]}
    assert ClassSet.from_arg("urban: building; water: lake").names == ["urban", "water"]
    with pytest.raises(InputError, match="class file 'other.txt' does not exist"):
        ClassSet.from_arg("other.txt")


def test_quoted_prompts_hold_separators():
    got = ClassSet.parse('road: "street; avenue", "a, b", highway  # comment\nwater: "lake: big"')
    assert got.to_dict() == {"road": ["street; avenue", "a, b", "highway"], "water": ["lake: big"]}
    with pytest.raises(InputError, match="double quote is not closed"):
        ClassSet.parse('road: "street')


def test_a_bom_is_dropped_and_other_encodings_are_clear_errors(tmp_path, caplog):
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfbuilding: roof\n")
    with caplog.at_level("WARNING"):
        assert ClassSet.from_file(bom).to_dict() == {"building": ["roof"]}
    assert "byte-order mark (BOM)" in caplog.text
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"b\xe9timent: toit\n")
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xe9 at position 1\)"):
        ClassSet.from_file(latin)
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("building: roof\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16.*BOM"):
        ClassSet.from_file(utf16)


def test_only_background_is_a_clear_error():
    with pytest.raises(InputError, match="only 'background'"):
        ClassSet.parse("background: grass, soil")
