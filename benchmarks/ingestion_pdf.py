"""PDF ingestion side by side: Strongroom, pdfminer.six and pdfplumber.

Generates text PDFs (dense pages of known words) and a scanned PDF (page
images of known lines), then runs each extractor in a fresh process of its
own, one at a time, on the same files:

- pages per second on one core: pages per CPU second of one process with one
  thread (Tesseract is held to one thread with OMP_THREAD_LIMIT=1), which
  stays put while other work shares the machine; wall-clock rates are kept
  in the JSON too,
- peak resident memory, on a small and a large file, to show whether memory
  grows with the file,
- text agreement: the F1 score of the extracted words against the words
  drawn on the pages,
- OCR seconds per page: Strongroom's whole scanned-page path (render once,
  keep the page image, Tesseract with word boxes, build the document) against
  the Tesseract command alone on the same rendered page.

    python -m benchmarks.ingestion_pdf [--pages N] [--large-pages N]
        [--ocr-pages N] [--json FILE]

Unstructured and Docling are not measured: neither is installed here, and
Docling fetches its models from the internet at run time.
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
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

TEXT_TOOLS = ("strongroom", "pdfminer.six", "pdfplumber")
LINES_PER_PAGE = 48
OCR_LINES_PER_PAGE = 24
OCR_DPI = 300
# The vocabulary of the generated pages, one string so it reads as prose.
_VOCABULARY = (
    "account balance invoice payment customer contract renewal policy claim "
    "premium branch office quarterly report revenue expense audit ledger "
    "transfer deposit review approval schedule notice meeting minutes"
)
_WORDS = tuple(_VOCABULARY.split())


@dataclass(frozen=True)
class TextRun:
    tool: str
    pages: int
    seconds: float
    cpu_seconds: float
    # Pages per CPU second: what one core sustains, whatever else runs.
    pages_per_second: float
    pages_per_wall_second: float
    peak_rss_mib: float
    agreement: float


@dataclass(frozen=True)
class OcrRun:
    tool: str
    pages: int
    # CPU seconds per page, Tesseract's own included.
    seconds_per_page: float
    wall_seconds_per_page: float
    agreement: float


@dataclass(frozen=True)
class Results:
    text: list[TextRun]
    large: list[TextRun]
    ocr: list[OcrRun]

    def ratio(self, tool: str) -> float:
        by_tool = {r.tool: r for r in self.text}
        return by_tool["strongroom"].pages_per_second / by_tool[tool].pages_per_second

    @property
    def ocr_overhead(self) -> float:
        by_tool = {r.tool: r for r in self.ocr}
        return (
            by_tool["strongroom"].seconds_per_page
            / by_tool["tesseract"].seconds_per_page
            - 1
        )


def page_lines(page: int, count: int = LINES_PER_PAGE) -> list[str]:
    rng = random.Random(page)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(8)) + f" {rng.randint(100, 99999)}"
        for _ in range(count)
    ]


def write_text_pdf(path: Path, pages: int) -> list[str]:
    """A PDF of ``pages`` dense pages; returns every word drawn, in order."""
    pdf = canvas.Canvas(str(path), pagesize=letter)
    words: list[str] = []
    for page in range(pages):
        y = 750.0
        for line in page_lines(page):
            pdf.drawString(54, y, line)
            words.extend(line.split())
            y -= 14.5
        pdf.showPage()
    pdf.save()
    return words


def write_scanned_pdf(path: Path, pages: int) -> list[str]:
    """A PDF of page images (no text layer) at 300 dpi; returns the words."""
    font = ImageFont.load_default(size=36)
    pdf = canvas.Canvas(str(path), pagesize=letter)
    words: list[str] = []
    for page in range(pages):
        image = Image.new("L", (int(8.5 * OCR_DPI), 11 * OCR_DPI), 255)
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(page_lines(1000 + page, OCR_LINES_PER_PAGE)):
            draw.text((150, 150 + n * 120), line, fill=0, font=font)
            words.extend(line.split())
        pdf.drawImage(ImageReader(image), 0, 0, 612, 792)
        pdf.showPage()
    pdf.save()
    return words


def agreement(extracted: str, reference: list[str]) -> float:
    """F1 of the extracted words against the reference words (as multisets)."""
    got, want = Counter(extracted.split()), Counter(reference)
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(got.values())
    recall = overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def _strongroom() -> Callable[[Path], str]:
    from strongroom.services.ingestion.domain import Limits
    from strongroom.services.ingestion.parsers import parse_pdf

    def extract(path: Path) -> str:
        with tempfile.TemporaryDirectory() as out:
            return parse_pdf(path, Limits(ocr_dpi=OCR_DPI), Path(out)).text

    return extract


def _pdfminer() -> Callable[[Path], str]:
    from pdfminer.high_level import extract_text

    def extract(path: Path) -> str:
        text: str = extract_text(str(path))
        return text

    return extract


def _pdfplumber() -> Callable[[Path], str]:
    import pdfplumber

    def extract(path: Path) -> str:
        with pdfplumber.open(str(path)) as pdf:
            return "\n".join(page.extract_text() or "" for page in pdf.pages)

    return extract


# Each loads its library first, so imports are not part of the measurement.
_EXTRACTORS: dict[str, Callable[[], Callable[[Path], str]]] = {
    "strongroom": _strongroom,
    "pdfminer.six": _pdfminer,
    "pdfplumber": _pdfplumber,
}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (Tesseract)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_one(tool: str, path: Path, text_out: Path) -> dict[str, float]:
    """In this (fresh) process: extract, time it, and read peak memory."""
    extract = _EXTRACTORS[tool]()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    text = extract(path)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    text_out.write_text(text)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started its program.

    Read from /proc rather than getrusage, whose maximum survives exec and
    so would report the parent's size for a small child.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _in_fresh_process(tool: str, path: Path, text_out: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingestion_pdf", "--run", tool, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1", "BENCH_TEXT_OUT": str(text_out)},
    )
    measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def measure_text(path: Path, pages: int, words: list[str]) -> list[TextRun]:
    runs = []
    for tool in TEXT_TOOLS:
        text_out = path.with_suffix(f".{tool}.txt")
        measured = _in_fresh_process(tool, path, text_out)
        runs.append(
            TextRun(
                tool=tool,
                pages=pages,
                seconds=round(measured["seconds"], 3),
                cpu_seconds=round(measured["cpu_seconds"], 3),
                pages_per_second=round(pages / measured["cpu_seconds"], 1),
                pages_per_wall_second=round(pages / measured["seconds"], 1),
                peak_rss_mib=round(measured["peak_rss_mib"], 1),
                agreement=round(agreement(text_out.read_text(), words), 4),
            )
        )
    return runs


def measure_ocr(path: Path, pages: int, words: list[str], work: Path) -> list[OcrRun]:
    """Strongroom's scanned-page path against Tesseract on the same pixels."""
    import pypdfium2

    text_out = work / "ocr.strongroom.txt"
    measured = _in_fresh_process("strongroom", path, text_out)
    strongroom = OcrRun(
        "strongroom",
        pages,
        round(measured["cpu_seconds"] / pages, 3),
        round(measured["seconds"] / pages, 3),
        round(agreement(text_out.read_text(), words), 4),
    )
    pdf = pypdfium2.PdfDocument(str(path))
    images = []
    for index in range(pages):
        image = work / f"page-{index}.png"
        pdf[index].render(scale=OCR_DPI / 72, grayscale=True).to_pil().save(image)
        images.append(image)
    pdf.close()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    texts = [
        subprocess.run(
            [
                "tesseract",
                str(i),
                "stdout",
                "-l",
                "eng",
                "--psm",
                "3",
                "--dpi",
                str(OCR_DPI),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        ).stdout
        for i in images
    ]
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    tesseract = OcrRun(
        "tesseract",
        pages,
        round(cpu / pages, 3),
        round(seconds / pages, 3),
        round(agreement("\n".join(texts), words), 4),
    )
    return [strongroom, tesseract]


def measure(pages: int, large_pages: int, ocr_pages: int, work: Path) -> Results:
    small, large, scanned = work / "small.pdf", work / "large.pdf", work / "scan.pdf"
    small_words = write_text_pdf(small, pages)
    large_words = write_text_pdf(large, large_pages)
    scan_words = write_scanned_pdf(scanned, ocr_pages)
    return Results(
        text=measure_text(small, pages, small_words),
        large=measure_text(large, large_pages, large_words),
        ocr=measure_ocr(scanned, ocr_pages, scan_words, work),
    )


def report(results: Results) -> str:
    lines = [
        f"{'text PDF':<14}{'pages':>7}{'pages/cpu-s':>12}{'vs peer':>9}"
        f"{'peak MiB':>10}{'large MiB':>11}{'agreement':>11}",
    ]
    large = {r.tool: r for r in results.large}
    for run in results.text:
        ratio = (
            "" if run.tool == "strongroom" else f"{1 / results.ratio(run.tool):.2f}x"
        )
        lines.append(
            f"{run.tool:<14}{run.pages:>7}{run.pages_per_second:>12}"
            f"{ratio:>9}{run.peak_rss_mib:>10}{large[run.tool].peak_rss_mib:>11}"
            f"{run.agreement:>11}"
        )
    for tool in TEXT_TOOLS[1:]:
        lines.append(f"Strongroom is {results.ratio(tool):.1f}x {tool}")
    lines.append(f"{'OCR':<14}{'pages':>7}{'cpu-s/page':>12}{'agreement':>11}")
    for ocr in results.ocr:
        lines.append(
            f"{ocr.tool:<14}{ocr.pages:>7}{ocr.seconds_per_page:>12}{ocr.agreement:>11}"
        )
    lines.append(f"Strongroom OCR overhead over Tesseract: {results.ocr_overhead:+.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--large-pages", type=int, default=400)
    parser.add_argument("--ocr-pages", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--run", nargs=2, metavar=("TOOL", "PDF"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.run:
        tool, path = args.run
        measured = run_one(tool, Path(path), Path(os.environ["BENCH_TEXT_OUT"]))
        print(json.dumps(measured))
        return
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as folder:
        results = measure(args.pages, args.large_pages, args.ocr_pages, Path(folder))
    print(report(results))
    if args.json:
        document: dict[str, Any] = asdict(results)
        document["ratios"] = {
            tool: round(results.ratio(tool), 2) for tool in TEXT_TOOLS[1:]
        }
        document["ocr_overhead"] = round(results.ocr_overhead, 4)
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
