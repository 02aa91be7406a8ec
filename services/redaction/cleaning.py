"""Cleaning before redaction: normalisation, repairs, dedupe signatures, quality.

Pure except for numpy arithmetic. Every edit keeps a map from the cleaned
text back to the original, so a finding on the cleaned text can still be
drawn on the page image at the original's boxes.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

CLEANING_VERSION = "clean-1"
PAGE_SEPARATOR = "\n\f"


@dataclass(frozen=True)
class OffsetMap:
    """Cleaned offset -> original offset, as runs copied unchanged.

    ``runs`` holds (cleaned start, original start, length); a position inside
    a replaced stretch maps to the start of what it replaced.
    """

    runs: tuple[tuple[int, int, int], ...]
    cleaned_length: int

    @cached_property
    def _starts(self) -> list[int]:
        return [r[0] for r in self.runs]

    def to_original(self, position: int) -> int:
        index = bisect.bisect_right(self._starts, position) - 1
        if index < 0:
            return 0
        out_start, src_start, length = self.runs[index]
        return src_start + min(position - out_start, length)

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        first = self.to_original(start)
        last = self.to_original(max(end - 1, start)) + 1
        return (first, max(last, first + 1))

    @classmethod
    def identity(cls, length: int) -> OffsetMap:
        return cls(((0, 0, length),), length)

    def then(self, later: OffsetMap) -> OffsetMap:
        """The map of this edit followed by ``later`` (cleaned by both -> original)."""
        runs = []
        for out_start, mid_start, length in later.runs:
            position = mid_start
            end = mid_start + length
            while position < end:
                original = self.to_original(position)
                # Extend while this map copies straight through.
                index = bisect.bisect_right(self._starts, position) - 1
                if index >= 0:
                    r_out, _, r_len = self.runs[index]
                    span = min(end, r_out + r_len) - position
                else:
                    span = 0
                span = max(span, 1)
                runs.append((out_start + (position - mid_start), original, span))
                position += span
        return OffsetMap(tuple(runs), later.cleaned_length)


def _substitute(
    text: str, pattern: re.Pattern[str], replacement: Callable[[re.Match[str]], str]
) -> tuple[str, OffsetMap]:
    parts: list[str] = []
    runs: list[tuple[int, int, int]] = []
    cursor = 0
    length = 0
    for m in pattern.finditer(text):
        new = replacement(m)
        if new == m.group():
            continue
        if m.start() > cursor:
            runs.append((length, cursor, m.start() - cursor))
            parts.append(text[cursor : m.start()])
            length += m.start() - cursor
        parts.append(new)
        length += len(new)
        cursor = m.end()
    if cursor < len(text):
        runs.append((length, cursor, len(text) - cursor))
        parts.append(text[cursor:])
        length += len(text) - cursor
    return "".join(parts), OffsetMap(tuple(runs), length)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])[-\u00ad]\n[ \t]*(?=[a-z])")
_SPACE_RUN = re.compile(r"[ \t\u00a0]+(?=\n)|[ \t\u00a0]{2,}|\n{3,}")


@dataclass(frozen=True)
class Cleaned:
    text: str
    offsets: OffsetMap
    normalised: int
    hyphenations: int
    whitespace: int
    boilerplate_lines: int


def clean(text: str) -> Cleaned:
    """NFKC, broken hyphenation joined, runs of blanks squeezed, and lines
    repeated as a header or footer on most pages removed."""
    offsets = OffsetMap.identity(len(text))
    counts = {"norm": 0, "hyph": 0, "ws": 0}

    def nfkc(m: re.Match[str]) -> str:
        new = unicodedata.normalize("NFKC", m.group())
        if new != m.group():
            counts["norm"] += 1
        return new

    def join(m: re.Match[str]) -> str:
        counts["hyph"] += 1
        return ""

    def squeeze(m: re.Match[str]) -> str:
        counts["ws"] += 1
        if m.group().startswith("\n"):
            return "\n\n"
        ends_line = m.end() < len(m.string) and m.string[m.end()] == "\n"
        return "" if ends_line else " "

    steps: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
    if not text.isascii():
        steps.append((_NON_ASCII, nfkc))
    steps += [(_HYPHEN_BREAK, join)]
    for pattern, replacement in steps:
        text, step = _substitute(text, pattern, replacement)
        offsets = offsets.then(step)
    text, step, removed = _remove_boilerplate(text)
    offsets = offsets.then(step)
    text, step = _substitute(text, _SPACE_RUN, squeeze)
    offsets = offsets.then(step)
    return Cleaned(text, offsets, counts["norm"], counts["hyph"], counts["ws"], removed)


_DIGITS = re.compile(r"\d+")


def _remove_boilerplate(text: str) -> tuple[str, OffsetMap, int]:
    """Drop the first and last lines of pages when most pages repeat them
    (page numbers count as the same line)."""
    pages = text.split(PAGE_SEPARATOR)
    if len(pages) < 3:
        return text, OffsetMap.identity(len(text)), 0
    edges: Counter[str] = Counter()
    for page in pages:
        lines = [line for line in page.split("\n") if line.strip()]
        for line in {*lines[:2], *lines[-2:]}:
            edges[_DIGITS.sub("#", line.strip())] += 1
    repeated = {k for k, v in edges.items() if v >= max(3, len(pages) // 2 + 1)}
    if not repeated:
        return text, OffsetMap.identity(len(text)), 0
    line_pattern = re.compile(r"(?:^|(?<=\f))[^\n\f]*(?:\n|$)", re.M)
    removed = 0

    def drop(m: re.Match[str]) -> str:
        nonlocal removed
        body = m.group().rstrip("\n").strip()
        if body and _DIGITS.sub("#", body) in repeated:
            removed += 1
            return ""
        return m.group()

    new, step = _substitute(text, line_pattern, drop)
    return new, step, removed


# --- exact and near duplicates -------------------------------------------------


def exact_key(text: str) -> str:
    """What two texts share when they differ only in case and spacing."""
    return hashlib.sha256(" ".join(text.casefold().split()).encode()).hexdigest()


_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class MinHasher:
    """MinHash over word shingles, with numpy permutations (a*x + b mod p)."""

    num_perm: int = 128
    shingle_size: int = 5
    seed: int = 1
    a: npt.NDArray[np.uint64] = field(init=False, repr=False)
    b: npt.NDArray[np.uint64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.RandomState(self.seed)
        a = rng.randint(1, np.iinfo(np.uint32).max, size=self.num_perm, dtype=np.uint64)
        b = rng.randint(0, np.iinfo(np.uint32).max, size=self.num_perm, dtype=np.uint64)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    def shingles(self, text: str) -> npt.NDArray[np.uint64]:
        """32-bit hashes of each run of ``shingle_size`` words."""
        words = _TOKEN.findall(text.casefold())
        if not words:
            return np.zeros(0, dtype=np.uint64)
        tokens = np.fromiter(
            (zlib.crc32(w.encode()) for w in words), dtype=np.uint64, count=len(words)
        )
        k = min(self.shingle_size, len(tokens))
        count = len(tokens) - k + 1
        h = np.zeros(count, dtype=np.uint64)
        for j in range(k):
            h = (h * np.uint64(0x01000193)) ^ tokens[j : j + count]
        return np.unique(h & _MAX_HASH)

    def signature(self, text: str) -> npt.NDArray[np.uint64]:
        values = self.shingles(text)
        signature = np.full(self.num_perm, _MAX_HASH, dtype=np.uint64)
        for start in range(0, len(values), 2048):
            block = values[start : start + 2048, None]
            permuted = ((block * self.a + self.b) % _MERSENNE) & _MAX_HASH
            signature = np.minimum(signature, permuted.min(axis=0))
        return signature


def jaccard_estimate(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> float:
    return float(np.mean(a == b))


def lsh_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """Bands and rows whose S-curve threshold (1/b)^(1/r) is nearest ``threshold``."""
    best = (num_perm, 1)
    best_gap = 2.0
    for rows in range(1, num_perm + 1):
        if num_perm % rows:
            continue
        bands = num_perm // rows
        gap = abs((1 / bands) ** (1 / rows) - threshold)
        if gap < best_gap:
            best, best_gap = (bands, rows), gap
    return best


def band_keys(signature: npt.NDArray[np.uint64], bands: int, rows: int) -> list[str]:
    return [
        hashlib.blake2b(
            signature[i * rows : (i + 1) * rows].tobytes(), digest_size=8
        ).hexdigest()
        for i in range(bands)
    ]


# --- quality ----------------------------------------------------------------------

_COMMON_WORDS = frozenset(
    "the and of to a in is for on that with was as by at from be this are or it "
    "an not have has patient date please your you we our account letter".split()
)


@dataclass(frozen=True)
class Quality:
    score: float
    reasons: tuple[str, ...]
    measures: dict[str, float]


def quality(text: str, ocr_confidences: Sequence[float] = ()) -> Quality:
    """A score in [0, 1] and the reasons it is below 1."""
    reasons: list[str] = []
    penalty = 0.0
    visible = [ch for ch in text if not ch.isspace()]
    length = len(visible)
    symbols = sum(not ch.isalnum() for ch in visible) / max(length, 1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    repeated = 1 - len(set(lines)) / max(len(lines), 1)
    words = _TOKEN.findall(text.casefold())
    common = sum(w in _COMMON_WORDS for w in words) / max(len(words), 1)
    measures = {
        "length": float(length),
        "symbol_ratio": round(symbols, 4),
        "repetition_ratio": round(repeated, 4),
        "common_word_ratio": round(common, 4),
    }
    if length < 40:
        reasons.append("too_short")
        penalty += 0.5
    if symbols > 0.3:
        reasons.append("many_symbols")
        penalty += min(0.5, symbols)
    if repeated > 0.5 and len(lines) >= 4:
        reasons.append("repetitive")
        penalty += 0.3
    if len(words) >= 20 and common < 0.03:
        reasons.append("not_english_prose")
        penalty += 0.2
    if ocr_confidences:
        mean = sum(ocr_confidences) / len(ocr_confidences)
        measures["ocr_confidence"] = round(mean, 4)
        if mean < 0.6:
            reasons.append("low_ocr_confidence")
            penalty += 0.4
    return Quality(round(max(0.0, 1.0 - penalty), 4), tuple(reasons), measures)
