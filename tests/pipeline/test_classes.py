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
    ("bad;name", "not allowed"),
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
