"""Cleaning: normalisation with offsets kept, boilerplate, duplicates, quality."""

from __future__ import annotations

import random

import numpy as np

from strongroom.services.redaction import cleaning


def test_clean_repairs_text_and_maps_offsets_back() -> None:
    page = "St Mary Clinic\n{body}\nConfidential page {n}"
    bodies = ["The pa-\ntient  was \ufb01ne.", "Second page.", "Third page."]
    text = "\n\f".join(page.format(body=b, n=i) for i, b in enumerate(bodies, 1))

    cleaned = cleaning.clean(text)

    assert "St Mary Clinic" not in cleaned.text
    assert "Confidential page" not in cleaned.text
    assert "The patient was fine." in cleaned.text
    assert cleaned.boilerplate_lines == 6
    start = cleaned.text.index("Third")
    s, e = cleaned.offsets.span_to_original(start, start + 5)
    assert text[s:e] == "Third"


def test_exact_key_ignores_case_and_spacing() -> None:
    assert cleaning.exact_key("A  note\nhere") == cleaning.exact_key("a note here")
    assert cleaning.exact_key("a note") != cleaning.exact_key("a nose")


def test_minhash_estimates_jaccard_and_lsh_finds_near_duplicates() -> None:
    rng = random.Random(3)
    words = [f"w{rng.randrange(5000)}" for _ in range(400)]
    near = list(words)
    for i in range(0, 400, 50):
        near[i] = "changed"
    other = [f"w{rng.randrange(5000)}" for _ in range(400)]
    hasher = cleaning.MinHasher(num_perm=128, shingle_size=3)
    a, b, c = (hasher.signature(" ".join(x)) for x in (words, near, other))

    assert cleaning.jaccard_estimate(a, b) > 0.6
    assert cleaning.jaccard_estimate(a, c) < 0.1
    bands, rows = cleaning.lsh_bands(128, 0.5)
    assert bands * rows == 128
    keys_a, keys_b, keys_c = (cleaning.band_keys(s, bands, rows) for s in (a, b, c))
    assert set(keys_a) & set(keys_b)
    assert not set(keys_a) & set(keys_c)
    assert a.dtype == np.uint64


def test_quality_gives_reasons() -> None:
    good = cleaning.quality(
        "The patient was seen in the clinic and is doing well. " * 3
    )
    assert good.score == 1.0 and not good.reasons
    bad = cleaning.quality("#$%^ &*() ~~~", ocr_confidences=[0.3, 0.4])
    assert bad.score < 0.5
    assert {"too_short", "many_symbols", "low_ocr_confidence"} <= set(bad.reasons)
