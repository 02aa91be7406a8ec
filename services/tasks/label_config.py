"""Import of a Label Studio labeling config into a Strongroom label schema.

Pure: no I/O. The config is untrusted XML, parsed with ``defusedxml`` with
DTDs, entities and external references refused and the size capped. The
supported tags and what each becomes are listed in
``docs/label-studio-import.md``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import defusedxml
import defusedxml.ElementTree as SafeET

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.tasks.domain import FieldSpec, Label, LabelSchema

MAX_CONFIG_BYTES = 256 * 1024

# A Strongroom label or field name: a letter, then up to 63 letters, digits,
# underscores or hyphens.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
HEX_COLOR = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
MAX_HOTKEY_LENGTH = 16
MAX_DESCRIPTION_LENGTH = 1000
# Label Studio configs are a few levels deep; this bounds the walk.
MAX_DEPTH = 64

# Tags that only arrange the annotator's screen; they are skipped silently.
LAYOUT_TAGS = frozenset({"view", "header", "style", "collapse", "panel", "filter"})
# Objects a control can point at.
OBJECT_TAGS = frozenset({"text", "image"})
CONTROL_TAGS = frozenset(
    {"labels", "choices", "relations", "rectanglelabels", "textarea"}
)
# Option tags and the controls they may sit in.
OPTION_PARENTS = {
    "label": frozenset({"labels", "rectanglelabels"}),
    "choice": frozenset({"choices"}),
    "relation": frozenset({"relations"}),
}
SUPPORTED_TAGS = LAYOUT_TAGS | OBJECT_TAGS | CONTROL_TAGS | OPTION_PARENTS.keys()
CANONICAL_NAMES = {
    "view": "View",
    "text": "Text",
    "image": "Image",
    "labels": "Labels",
    "choices": "Choices",
    "relations": "Relations",
    "rectanglelabels": "RectangleLabels",
    "textarea": "TextArea",
    "label": "Label",
    "choice": "Choice",
    "relation": "Relation",
}
# Which objects each control may label.
CONTROL_TARGETS = {
    "labels": frozenset({"text"}),
    "rectanglelabels": frozenset({"image"}),
    "choices": frozenset({"text", "image"}),
    "textarea": frozenset({"text", "image"}),
}

# Label Studio configs often name colours; these map to hex, any other name
# leaves the colour to Strongroom's default palette.
NAMED_COLORS = {
    "black": "#000000",
    "blue": "#0000ff",
    "brown": "#a52a2a",
    "cyan": "#00ffff",
    "darkblue": "#00008b",
    "darkgreen": "#006400",
    "darkorange": "#ff8c00",
    "gold": "#ffd700",
    "gray": "#808080",
    "green": "#008000",
    "grey": "#808080",
    "lightblue": "#add8e6",
    "lightgreen": "#90ee90",
    "lime": "#00ff00",
    "magenta": "#ff00ff",
    "maroon": "#800000",
    "navy": "#000080",
    "olive": "#808000",
    "orange": "#ffa500",
    "pink": "#ffc0cb",
    "purple": "#800080",
    "red": "#ff0000",
    "teal": "#008080",
    "violet": "#ee82ee",
    "white": "#ffffff",
    "yellow": "#ffff00",
}


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message, code="label_config_invalid")


def _tag(element: ET.Element) -> str:
    return element.tag.lower() if isinstance(element.tag, str) else ""


def _shown(text: str) -> str:
    """Quote a name from the config for an error message, shortened."""
    return repr(text if len(text) <= 70 else text[:67] + "...")


def parse_label_config(xml: str) -> LabelSchema:
    """Turn a Label Studio labeling config into a Strongroom label schema.

    Tag names match case-insensitively. Spaces in label and field names
    become underscores.

    Raises:
        InvalidArgument: ``label_config_unsupported`` names every tag that
            Strongroom does not import; ``label_config_invalid`` for XML that
            does not parse, declares a DTD or entities, exceeds 256 KiB, or
            misses or misuses names.
    """
    root = _parse_xml(xml)
    _refuse_unsupported(root)
    if _tag(root) != "view":
        raise _invalid("A labeling config must have <View> as its root tag.")
    _check_structure(root)

    objects = _objects(root)
    spans: list[Label] = []
    classes: list[Label] = []
    relations: list[Label] = []
    boxes: list[Label] = []
    fields: list[FieldSpec] = []
    choices_blocks = 0
    multi_label = False

    for control in _walk(root):
        kind = _tag(control)
        if kind not in CONTROL_TAGS:
            continue
        # Label Studio's <Relations> carries no name and points at no object.
        if kind != "relations":
            name = _required(control, "name")
            _check_targets(control, kind, name, objects)
        if kind == "labels":
            spans.extend(_options(control, "label"))
        elif kind == "rectanglelabels":
            boxes.extend(_options(control, "label"))
        elif kind == "choices":
            choices_blocks += 1
            classes.extend(_options(control, "choice"))
            multi_label = control.get("choice", "single").strip().lower() == "multiple"
        elif kind == "relations":
            relations.extend(_options(control, "relation"))
        else:
            fields.append(
                FieldSpec(
                    name=_valid_name(name, "<TextArea> name"),
                    description=_description(control.get("placeholder", "")),
                )
            )

    if choices_blocks > 1:
        raise _invalid(
            f"Strongroom classifies a task with one <Choices> block; this config "
            f"has {choices_blocks}."
        )
    for kind_name, specs in (
        ("span label", spans),
        ("class", classes),
        ("relation", relations),
        ("box label", boxes),
    ):
        _refuse_duplicates(kind_name, [spec.name for spec in specs])
    _refuse_duplicates("text field", [spec.name for spec in fields])
    if not (spans or classes or relations or boxes or fields):
        raise _invalid(
            "The labeling config defines no labels, choices, relations, "
            "rectangle labels or text areas."
        )
    return LabelSchema(
        spans=tuple(spans),
        classes=tuple(classes),
        multi_label=multi_label,
        relations=tuple(relations),
        boxes=tuple(boxes),
        fields=tuple(fields),
    )


def _parse_xml(xml: str) -> ET.Element:
    # A character is at least one byte, so a long string needs no encoding.
    too_long = len(xml) > MAX_CONFIG_BYTES
    if too_long or len(xml.encode("utf-8", errors="replace")) > MAX_CONFIG_BYTES:
        raise _invalid(
            f"A labeling config may be at most {MAX_CONFIG_BYTES // 1024} KiB."
        )
    try:
        root: ET.Element = SafeET.fromstring(
            xml, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:
        raise _invalid(
            "A labeling config must not declare a DTD, entities or external references."
        ) from exc
    except ET.ParseError as exc:
        line, column = exc.position
        raise _invalid(
            f"The labeling config is not well-formed XML (line {line}, "
            f"column {column})."
        ) from exc
    return root


def _walk(root: ET.Element) -> Iterator[ET.Element]:
    # Comments and processing instructions have a non-string tag.
    return (element for element in root.iter() if isinstance(element.tag, str))


def _refuse_unsupported(root: ET.Element) -> None:
    unsupported: dict[str, None] = {}
    for element in _walk(root):
        if _tag(element) not in SUPPORTED_TAGS:
            unsupported.setdefault(f"<{element.tag}>", None)
    if unsupported:
        raise InvalidArgument(
            "Strongroom cannot import these Label Studio tags: "
            f"{', '.join(unsupported)}.",
            code="label_config_unsupported",
        )


def _required(element: ET.Element, attribute: str) -> str:
    value = (element.get(attribute) or "").strip()
    if not value:
        shown = CANONICAL_NAMES.get(_tag(element), element.tag)
        raise _invalid(f"Every <{shown}> needs a non-empty {attribute!r} attribute.")
    return value


def _objects(root: ET.Element) -> dict[str, str]:
    """Map each object's name to its kind ("text" or "image")."""
    objects: dict[str, str] = {}
    for element in _walk(root):
        kind = _tag(element)
        if kind in OBJECT_TAGS:
            name = _required(element, "name")
            if name in objects:
                raise _invalid(f"Two objects share the name {_shown(name)}.")
            objects[name] = kind
    return objects


def _check_targets(
    control: ET.Element, kind: str, name: str, objects: dict[str, str]
) -> None:
    shown = CANONICAL_NAMES[kind]
    targets = [t.strip() for t in _required(control, "toName").split(",")]
    allowed = CONTROL_TARGETS[kind]
    for target in targets:
        if target not in objects:
            raise _invalid(
                f"<{shown}> {_shown(name)} points at {_shown(target)}, which is "
                "not the name of a <Text> or <Image>."
            )
        if objects[target] not in allowed:
            wanted = " or ".join(f"<{CANONICAL_NAMES[k]}>" for k in sorted(allowed))
            raise _invalid(
                f"<{shown}> {_shown(name)} must point at a {wanted}, not at "
                f"<{CANONICAL_NAMES[objects[target]]}> {_shown(target)}."
            )


def _options(control: ET.Element, option: str) -> list[Label]:
    """The option tags of one control, also inside layout tags within it."""
    specs: list[Label] = []
    for element in _walk(control):
        if element is control or _tag(element) != option:
            continue
        shown = CANONICAL_NAMES[option]
        name = _valid_name(_required(element, "value"), f"<{shown}> value")
        specs.append(
            Label(
                name=name,
                color=_color(element.get("background", "")),
                hotkey=element.get("hotkey", "").strip()[:MAX_HOTKEY_LENGTH],
                description=_description(
                    element.get("hint") or element.get("alias") or ""
                ),
            )
        )
    return specs


def _check_structure(root: ET.Element) -> None:
    """Refuse deep nesting, and an option tag outside a control of its kind."""
    stack: list[tuple[ET.Element, frozenset[str], int]] = [(root, frozenset(), 1)]
    while stack:
        element, controls, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _invalid(f"A labeling config may nest tags at most {MAX_DEPTH} deep.")
        kind = _tag(element)
        if kind in OPTION_PARENTS and not controls & OPTION_PARENTS[kind]:
            parents = " or ".join(
                f"<{CANONICAL_NAMES[p]}>" for p in sorted(OPTION_PARENTS[kind])
            )
            raise _invalid(f"A <{CANONICAL_NAMES[kind]}> must sit inside {parents}.")
        inner = controls | {kind} if kind in CONTROL_TAGS else controls
        stack.extend(
            (child, inner, depth + 1) for child in element if isinstance(child.tag, str)
        )


def _valid_name(raw: str, what: str) -> str:
    name = re.sub(r"\s+", "_", raw.strip())
    if not NAME_PATTERN.fullmatch(name):
        raise _invalid(
            f"The {what} {_shown(raw)} is not a valid Strongroom name: it must "
            "start with a letter and have at most 64 letters, digits, "
            "underscores or hyphens."
        )
    return name


def _color(raw: str) -> str:
    value = raw.strip().lower()
    if HEX_COLOR.fullmatch(value):
        if len(value) == 4:
            value = "#" + "".join(ch * 2 for ch in value[1:])
        return value
    return NAMED_COLORS.get(value, "")


def _description(raw: str) -> str:
    return " ".join(raw.split())[:MAX_DESCRIPTION_LENGTH]


def _refuse_duplicates(kind_name: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _invalid(f"The {kind_name} {_shown(name)} is defined twice.")
        seen.add(name)
