"""Import of Label Studio labeling configs."""

from __future__ import annotations

import time

import pytest

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.tasks.domain import FieldSpec, Label, LabelSchema
from strongroom.services.tasks.label_config import MAX_CONFIG_BYTES, parse_label_config


def _refused(xml: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_label_config(xml)
    return caught.value


def test_span_labels_on_text() -> None:
    schema = parse_label_config(
        """
        <View>
          <Labels name="ner" toName="text">
            <Label value="PER" background="#FF0000" hotkey="p" hint="A person"/>
            <Label value="ORG" background="blue" alias="Company"/>
            <Label value="Date of birth" background="#0f0"/>
            <Label value="MISC" background="rgba(0, 0, 0, 0.5)"/>
          </Labels>
          <Text name="text" value="$text"/>
        </View>
        """
    )
    assert schema == LabelSchema(
        spans=(
            Label("PER", color="#ff0000", hotkey="p", description="A person"),
            Label("ORG", color="#0000ff", description="Company"),
            Label("Date_of_birth", color="#00ff00"),
            Label("MISC"),
        )
    )


def test_single_choice() -> None:
    schema = parse_label_config(
        """
        <View>
          <Text name="text" value="$text"/>
          <Choices name="kind" toName="text" choice="single-radio">
            <Choice value="Invoice" hotkey="1"/>
            <Choice value="Letter" hint="Any correspondence"/>
          </Choices>
        </View>
        """
    )
    assert schema.classes == (
        Label("Invoice", hotkey="1"),
        Label("Letter", description="Any correspondence"),
    )
    assert schema.multi_label is False


def test_multiple_choice_with_layout_inside() -> None:
    schema = parse_label_config(
        """
        <View>
          <Text name="text" value="$text"/>
          <Choices name="topics" toName="text" choice="multiple">
            <View><Header value="Money"/><Choice value="Tax"/></View>
            <Choice value="Health"/>
          </Choices>
        </View>
        """
    )
    assert [c.name for c in schema.classes] == ["Tax", "Health"]
    assert schema.multi_label is True


def test_choices_may_classify_a_page_image() -> None:
    schema = parse_label_config(
        '<View><Image name="page" value="$image"/>'
        '<Choices name="c" toName="page"><Choice value="Form"/></Choices></View>'
    )
    assert schema.classes == (Label("Form"),)


def test_relations() -> None:
    schema = parse_label_config(
        """
        <View>
          <Relations>
            <Relation value="works_for"/>
            <Relation value="born in" hint="Place of birth"/>
          </Relations>
          <Labels name="ner" toName="text"><Label value="PER"/></Labels>
          <Text name="text" value="$text"/>
        </View>
        """
    )
    assert schema.relations == (
        Label("works_for"),
        Label("born_in", description="Place of birth"),
    )


def test_rectangle_labels_on_image() -> None:
    schema = parse_label_config(
        """
        <View>
          <Image name="page" value="$image"/>
          <RectangleLabels name="boxes" toName="page">
            <Label value="Signature" background="green"/>
            <Label value="Stamp"/>
          </RectangleLabels>
        </View>
        """
    )
    assert schema.boxes == (Label("Signature", color="#008000"), Label("Stamp"))
    assert schema.spans == ()


def test_text_area_is_a_field() -> None:
    schema = parse_label_config(
        """
        <View>
          <Text name="text" value="$text"/>
          <TextArea name="summary" toName="text" placeholder="  One line,
             in your own words "/>
        </View>
        """
    )
    assert schema.fields == (FieldSpec("summary", "One line, in your own words"),)


def test_xml_declaration_is_accepted() -> None:
    schema = parse_label_config(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<View><Text name="t"/><Labels name="l" toName="t"><Label value="A"/>'
        "</Labels></View>"
    )
    assert schema.spans == (Label("A"),)


def test_size_limit_counts_bytes() -> None:
    # Under the limit in characters, over it in UTF-8 bytes (2 bytes each).
    padding = "<!--" + "é" * (MAX_CONFIG_BYTES // 2 + 10) + "-->"
    xml = (
        "<View><Text name='t'/><Labels name='l' toName='t'><Label value='A'/>"
        f"</Labels>{padding}</View>"
    )
    assert len(xml) < MAX_CONFIG_BYTES
    assert "256 KiB" in _refused(xml).message


def test_layout_tags_and_comments_are_ignored() -> None:
    schema = parse_label_config(
        """
        <View style="display: flex">
          <!-- shown above the text -->
          <Style>.x { color: red }</Style>
          <Header value="Mark every name"/>
          <Collapse><Panel value="Help"><View/></Panel></Collapse>
          <Filter name="f" toName="ner"/>
          <view><TEXT name="text" value="$text"/></view>
          <labels name="ner" toName="text"><label value="PER"/></labels>
        </View>
        """
    )
    assert schema.spans == (Label("PER"),)


def test_unsupported_tags_are_all_named() -> None:
    error = _refused(
        """
        <View>
          <Audio name="audio" value="$audio"/>
          <Text name="text" value="$text"/>
          <Rating name="rating" toName="text"/>
          <Audio name="second" value="$other"/>
          <HyperText name="html" value="$html"/>
          <Labels name="ner" toName="text"><Label value="PER"/></Labels>
        </View>
        """
    )
    assert error.code == "label_config_unsupported"
    assert error.message == (
        "Strongroom cannot import these Label Studio tags: "
        "<Audio>, <Rating>, <HyperText>."
    )


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "<View><Text name='t'>",
        "<View></Views>",
        "not xml at all",
    ],
)
def test_malformed_xml(xml: str) -> None:
    assert _refused(xml).code == "label_config_invalid"


@pytest.mark.parametrize(
    ("xml", "fragment"),
    [
        # No name on the control, no toName, no value on an option.
        (
            "<View><Text name='t'/>"
            "<Labels toName='t'><Label value='A'/></Labels></View>",
            "'name'",
        ),
        (
            "<View><Text name='t'/><Labels name='l'><Label value='A'/></Labels></View>",
            "'toName'",
        ),
        (
            "<View><Text name='t'/>"
            "<Labels name='l' toName='t'><Label/></Labels></View>",
            "'value'",
        ),
        (
            "<View><Text/>"
            "<Labels name='l' toName='t'><Label value='A'/></Labels></View>",
            "<Text>",
        ),
        # toName that names nothing, or the wrong kind of object.
        (
            "<View><Text name='t'/><Labels name='l' toName='x'><Label value='A'/>"
            "</Labels></View>",
            "'x'",
        ),
        (
            "<View><Image name='p'/><Labels name='l' toName='p'><Label value='A'/>"
            "</Labels></View>",
            "<Text>",
        ),
        (
            "<View><Text name='t'/><RectangleLabels name='r' toName='t'>"
            "<Label value='A'/></RectangleLabels></View>",
            "<Image>",
        ),
        # An option outside its control.
        (
            "<View><Text name='t'/><Choices name='c' toName='t'/>"
            "<Choice value='A'/></View>",
            "<Choice>",
        ),
        # Root other than View, or nothing to label.
        ("<Text name='t'/>", "<View>"),
        ("<View><Text name='t' value='$text'/></View>", "no labels"),
        # Two single-choice groups cannot be one Strongroom class list.
        (
            "<View><Text name='t'/><Choices name='a' toName='t'><Choice value='X'/>"
            "</Choices><Choices name='b' toName='t'><Choice value='Y'/></Choices>"
            "</View>",
            "one <Choices>",
        ),
    ],
)
def test_invalid_configs(xml: str, fragment: str) -> None:
    error = _refused(xml)
    assert error.code == "label_config_invalid"
    assert fragment in error.message


@pytest.mark.parametrize("value", ["1st", "PER!", "_x", "a" * 65, "Zoë"])
def test_label_names_must_be_valid(value: str) -> None:
    error = _refused(
        f"<View><Text name='t'/><Labels name='l' toName='t'>"
        f"<Label value='{value}'/></Labels></View>"
    )
    assert error.code == "label_config_invalid"
    assert "not a valid Strongroom name" in error.message


def test_longest_valid_name_is_kept() -> None:
    name = "A" + "b" * 63
    schema = parse_label_config(
        f"<View><Text name='t'/><Labels name='l' toName='t'>"
        f"<Label value='{name}'/></Labels></View>"
    )
    assert schema.spans[0].name == name


def test_duplicate_labels_after_space_replacement() -> None:
    error = _refused(
        "<View><Text name='t'/><Labels name='l' toName='t'>"
        "<Label value='Date of birth'/><Label value='Date_of_birth'/>"
        "</Labels></View>"
    )
    assert "defined twice" in error.message


def test_billion_laughs_refused_quickly() -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE View [' + "".join(entities) + "]>\n"
        "<View><Header value='&lol9;'/></View>"
    )
    started = time.perf_counter()
    error = _refused(bomb)
    assert time.perf_counter() - started < 1.0
    assert error.code == "label_config_invalid"
    assert "DTD" in error.message


def test_external_entity_refused() -> None:
    xml = (
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE View [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
        "<View><Header value='&secret;'/></View>"
    )
    error = _refused(xml)
    assert error.code == "label_config_invalid"
    assert "passwd" not in error.message


def test_external_dtd_refused() -> None:
    xml = '<?xml version="1.0"?><!DOCTYPE View SYSTEM "http://example.invalid/x.dtd"><View/>'
    assert _refused(xml).code == "label_config_invalid"


def test_size_limit() -> None:
    padding = "<!--" + "x" * MAX_CONFIG_BYTES + "-->"
    xml = (
        "<View><Text name='t'/><Labels name='l' toName='t'><Label value='A'/>"
        f"</Labels>{padding}</View>"
    )
    error = _refused(xml)
    assert error.code == "label_config_invalid"
    assert "256 KiB" in error.message


def test_deep_nesting_refused() -> None:
    xml = "<View>" * 5000 + "</View>" * 5000
    assert _refused(xml).code == "label_config_invalid"


def test_full_config() -> None:
    schema = parse_label_config(
        """
        <View>
          <Header value="Contract review"/>
          <Text name="text" value="$text"/>
          <Labels name="ner" toName="text">
            <Label value="Party" background="#112233" hotkey="1"/>
          </Labels>
          <Relations><Relation value="signs"/></Relations>
          <Choices name="type" toName="text"><Choice value="NDA"/></Choices>
          <Image name="page" value="$page"/>
          <RectangleLabels name="r" toName="page"><Label value="Signature"/>
          </RectangleLabels>
          <TextArea name="notes" toName="text"/>
        </View>
        """
    )
    assert schema == LabelSchema(
        spans=(Label("Party", color="#112233", hotkey="1"),),
        classes=(Label("NDA"),),
        multi_label=False,
        relations=(Label("signs"),),
        boxes=(Label("Signature"),),
        fields=(FieldSpec("notes"),),
    )
