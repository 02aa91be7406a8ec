"""Training and prediction with spaCy, from a blank English pipeline.

Nothing is downloaded: ``spacy.blank("en")`` needs only the installed
package. These functions run in a child process (see ``assistant``), so
their arguments and results are plain picklable values.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from strongroom.services.labeling import assistance
from strongroom.services.labeling.assistance import CLASSES, SPANS, Example

# Candidate parses kept by the span model; their probabilities give each
# predicted span a confidence.
BEAM_WIDTH = 8
# Span suggestions below this confidence are not shown.
MIN_SPAN_SCORE = 0.3


@dataclass(frozen=True)
class ModelSpec:
    """What a pipeline is built for: enough to rebuild it before loading."""

    kind: str
    labels: tuple[str, ...]
    multi_label: bool = False


@dataclass(frozen=True)
class TrainingRun:
    spec: ModelSpec
    train: tuple[Example, ...]
    held_out: tuple[Example, ...]
    epochs: int = 20
    max_seconds: float = 120.0
    seed: int = 0


@dataclass(frozen=True)
class TrainedModel:
    model: bytes
    scores: dict[str, float]
    baseline: dict[str, float]
    seconds: float
    epochs: int
    # Spans that fell inside a token and could not be learned from.
    misaligned_spans: int = 0


@dataclass(frozen=True)
class Prediction:
    """A model's guess for one text: spans (offsets into the text) with a
    confidence each, class probabilities, and how unsure it is overall."""

    spans: tuple[tuple[int, int, str, float], ...] = ()
    classes: dict[str, float] = field(default_factory=dict)
    uncertainty: float = 1.0


def blank_pipeline(spec: ModelSpec) -> Any:
    """A blank English pipeline with the one component ``spec`` needs."""
    import spacy

    nlp = spacy.blank("en")
    if spec.kind == SPANS:
        ner: Any = nlp.add_pipe("beam_ner", config={"beam_width": BEAM_WIDTH})
        for label in spec.labels:
            ner.add_label(label)
        return nlp
    exclusive = not spec.multi_label and len(spec.labels) >= 2
    model = {
        "@architectures": "spacy.TextCatBOW.v3",
        "exclusive_classes": exclusive,
        "ngram_size": 2,
        "no_output_layer": False,
    }
    name = "textcat" if exclusive else "textcat_multilabel"
    textcat: Any = nlp.add_pipe(name, config={"model": model})
    for label in spec.labels:
        textcat.add_label(label)
    return nlp


def train(run: TrainingRun) -> TrainedModel:
    """Train a pipeline on ``run.train``; score it and the baseline on
    ``run.held_out``."""
    from spacy import util
    from spacy.training import Example as SpacyExample

    # W033: a blank pipeline has no lexeme normalisation table; nothing to
    # download or fix for a model trained from scratch.
    warnings.filterwarnings("ignore", message=r"\[W033\]")
    started = time.monotonic()
    util.fix_random_seed(run.seed)  # type: ignore[attr-defined]
    nlp = blank_pipeline(run.spec)
    examples, misaligned = _spacy_examples(nlp, run.spec, run.train, SpacyExample)
    optimizer = nlp.initialize(lambda: examples)
    shuffler = random.Random(run.seed)
    epochs = 0
    for _ in range(run.epochs):
        shuffler.shuffle(examples)
        losses: dict[str, float] = {}
        for batch in util.minibatch(examples, size=8):  # type: ignore[no-untyped-call]
            nlp.update(batch, sgd=optimizer, drop=0.2, losses=losses)
        epochs += 1
        if time.monotonic() - started > run.max_seconds:
            break
    scores = _score(nlp, run.spec, run.held_out)
    baseline = assistance.baseline_scores(
        run.spec.kind, run.train, run.held_out, run.spec.labels
    )
    return TrainedModel(
        model=nlp.to_bytes(),
        scores=scores,
        baseline=baseline,
        seconds=time.monotonic() - started,
        epochs=epochs,
        misaligned_spans=misaligned,
    )


def _spacy_examples(
    nlp: Any, spec: ModelSpec, examples: Sequence[Example], make: Any
) -> tuple[list[Any], int]:
    made, misaligned = [], 0
    for example in examples:
        doc = nlp.make_doc(example.text)
        if spec.kind == SPANS:
            entities = []
            for start, end, label in example.spans:
                span = doc.char_span(start, end, label, alignment_mode="contract")
                if span is None:
                    misaligned += 1
                else:
                    entities.append(span)
            try:
                doc.ents = entities
            except ValueError:
                # Overlapping spans: the entity model takes a flat layer only.
                doc.ents = _flat(entities)
            made.append(make(nlp.make_doc(example.text), doc))
            continue
        cats = {label: float(label in example.classes) for label in spec.labels}
        made.append(make.from_dict(nlp.make_doc(example.text), {"cats": cats}))
    return made, misaligned


def _flat(spans: list[Any]) -> list[Any]:
    kept: list[Any] = []
    for span in sorted(spans, key=lambda s: (s.start, -len(s))):
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept


def _score(nlp: Any, spec: ModelSpec, held: Sequence[Example]) -> dict[str, float]:
    predictions = predict_with(nlp, spec, [e.text for e in held])
    if spec.kind == SPANS:
        return assistance.span_scores(
            [e.spans for e in held],
            [{(s, e, label) for s, e, label, _ in p.spans} for p in predictions],
        )
    return assistance.class_scores(
        [e.classes for e in held],
        [_chosen(p.classes, spec) for p in predictions],
        spec.labels,
    )


def _chosen(probabilities: dict[str, float], spec: ModelSpec) -> tuple[str, ...]:
    if not probabilities:
        return ()
    if spec.multi_label or len(spec.labels) < 2:
        return tuple(sorted(k for k, p in probabilities.items() if p >= 0.5))
    return (max(probabilities, key=lambda k: (probabilities[k], k)),)


def load(spec: ModelSpec, data: bytes) -> Any:
    """Rebuild a pipeline from its stored bytes."""
    nlp = blank_pipeline(spec)
    nlp.initialize()
    return nlp.from_bytes(data)


def predict(spec: ModelSpec, data: bytes, texts: Sequence[str]) -> list[Prediction]:
    """Load a stored pipeline and predict for each text."""
    return predict_with(load(spec, data), spec, texts)


def predict_with(nlp: Any, spec: ModelSpec, texts: Sequence[str]) -> list[Prediction]:
    if spec.kind == SPANS:
        return [_span_prediction(nlp, text) for text in texts]
    results = []
    for doc in nlp.pipe(texts, batch_size=64):
        probabilities = {
            label: float(doc.cats.get(label, 0.0)) for label in spec.labels
        }
        multi = spec.multi_label or len(spec.labels) < 2
        results.append(
            Prediction(
                classes=probabilities,
                uncertainty=assistance.class_uncertainty(probabilities, multi),
            )
        )
    return results


def _span_prediction(nlp: Any, text: str) -> Prediction:
    """Spans with their probability over the beam's parses.

    A span's confidence is the summed probability of the parses that contain
    it; the uncertainty is that of the least settled candidate span.
    """
    ner = nlp.get_pipe("beam_ner")
    doc = nlp.make_doc(text)
    beams = ner.predict([doc])
    scored = ner.scored_ents(beams)[0]
    ner.set_annotations([doc], beams)
    spans = []
    for entity in doc.ents:
        score = float(scored.get((entity.start, entity.end, entity.label_), 1.0))
        if score >= MIN_SPAN_SCORE:
            spans.append((entity.start_char, entity.end_char, entity.label_, score))
    return Prediction(
        spans=tuple(spans),
        uncertainty=assistance.span_uncertainty(scored.values()),
    )


def label_space(kind: str, labels: Sequence[str]) -> tuple[str, ...]:
    """The labels a pipeline is built with, in a fixed order."""
    if kind not in (SPANS, CLASSES):
        raise ValueError(f"A model is for 'spans' or 'classes', not {kind!r}.")
    return tuple(sorted(set(labels)))
