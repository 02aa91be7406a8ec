"""The small notes the load test uploads: two paragraphs, so two tasks each.

Imported by the test and by the locustfile, so nothing here may import
locust, gevent or grpc.
"""

from __future__ import annotations

LABEL = "SYMPTOM"
CLASSES = ("Urgent", "Routine")
# The project cuts documents at blank lines; every note has this many.
PARAGRAPHS = 2
SKIP_REASON = "Not a clinical note"

_SYMPTOMS = ("cough", "headache", "chest pain", "fever", "dizziness", "back pain")


def note(source: str, n: int) -> str:
    """Note ``n`` from ``source``; no two (source, n) give the same text."""
    symptom = _SYMPTOMS[n % len(_SYMPTOMS)]
    return (
        f"Note {source}-{n}: the patient reported {symptom} at the clinic "
        f"and was seen by the duty nurse.\n\n"
        f"Follow-up {n} booked; {symptom} to be reviewed in two weeks."
    )
