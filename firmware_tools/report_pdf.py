"""The commissioning report as PDF, drawn with fpdf2 (pure Python, no browser or system renderer).

Text is set in DejaVu Sans where it is installed (units such as µg/m³ and °C
need a Unicode font), with a CJK font as fallback for Chinese site names
(WenQuanYi or Noto CJK, when present); without them the PDF core font is used
and characters it lacks are replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from firmware_tools.report_data import Commissioning, counters_text, gateway_rows, reading_rows

_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
_MAIN = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
_CJK = ("wqy-microhei.ttc", "wqy-zenhei.ttc", "NotoSansCJK-Regular.ttc", "NotoSansSC-Regular.otf")


def render_pdf(report: Commissioning, path: Path) -> None:
    """Write the report to ``path``."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    family = _fonts(pdf)
    pdf.set_title(f"Commissioning report {report.config.gateway.id}")
    pdf.add_page()
    text = _Text(pdf, family)
    gw = report.config.gateway
    text.heading(f"Commissioning report — gateway {gw.id}", size=15)
    text.table(
        gateway_rows(report),
        widths=(35, 145),
    )
    text.heading(f"Devices ({len(report.devices)})")
    for entry in report.devices:
        text.heading(entry.id, size=10)
        text.table(
            [
                ("driver", "profile", "address", "comms counters"),
                (entry.driver, entry.profile, entry.where, counters_text(entry)),
            ],
            widths=(25, 40, 55, 60),
            header=True,
        )
        rows = reading_rows(entry)
        if rows:
            text.table([("channel", "live reading", "check"), *rows], widths=(45, 45, 90), header=True)
        if entry.note:
            text.line(entry.note)
    text.heading(f"Alarm tests ({len(report.alarm_tests)})")
    if report.alarm_tests:
        tests: list[tuple[str, ...]] = [("device", "time", "result", "to broker", "detail", "ack / cleared")]
        for t in report.alarm_tests:
            latency = "" if t.latency_s is None else f"{t.latency_s:.2f} s"
            done = " / ".join(x for x in (t.acknowledged_by or "", t.cleared_at or "") if x)
            tests.append((t.device, t.raised_at or t.started_at, t.result.upper(), latency, t.detail, done))
        text.table(tests, widths=(25, 32, 15, 17, 56, 35), header=True)
    else:
        text.line("No alarm was tested.")
    text.heading("Photos")
    for label, photo in report.photos:
        text.photo(label, photo)
    text.end_photos()
    text.heading("Sign-off")
    text.table(
        [
            ("", "name", "signature", "date"),
            ("Technician", report.technician, "", ""),
            ("Accepted for the site", "", "", ""),
        ],
        widths=(40, 50, 55, 35),
        header=True,
        row_height=12,
    )
    text.line(f"Config digest {report.digest}")
    pdf.output(str(path))


class _Text:
    def __init__(self, pdf: FPDF, family: str) -> None:
        self.pdf = pdf
        self.family = family
        self._photo_column = 0

    def heading(self, title: str, *, size: int = 12) -> None:
        self.pdf.set_font(self.family, "B", size)
        self.pdf.ln(2)
        self.pdf.multi_cell(0, size * 0.5, self._safe(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(1)

    def line(self, text: str) -> None:
        self.pdf.set_font(self.family, "", 9)
        self.pdf.multi_cell(0, 5, self._safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def table(
        self,
        rows: Sequence[tuple[str, ...]],
        *,
        widths: tuple[int, ...],
        header: bool = False,
        row_height: float = 5,
    ) -> None:
        self.pdf.set_font(self.family, "", 8)
        with self.pdf.table(
            col_widths=widths,
            first_row_as_headings=header,
            line_height=row_height,
            text_align="LEFT",
            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
        ) as table:
            for row in rows:
                cells = table.row()
                for cell in row:
                    cells.cell(self._safe(str(cell)))
        self.pdf.ln(2)

    def photo(self, label: str, path: Path | None) -> None:
        """A photo slot, two to a row: the photo given, or an empty frame to paste one into."""
        pdf = self.pdf
        left = self._photo_column == 0
        if left and pdf.will_page_break(45):
            pdf.add_page()
        x = pdf.l_margin + (0 if left else 95)
        y = pdf.get_y()
        pdf.set_dash_pattern(dash=1, gap=1)
        pdf.rect(x, y, 85, 40)
        pdf.set_dash_pattern()
        if path is not None:
            pdf.image(str(path), x=x + 1, y=y + 1, h=32, keep_aspect_ratio=True, w=83)
        pdf.set_xy(x + 2, y + 34)
        pdf.set_font(self.family, "", 8)
        pdf.cell(80, 5, self._safe(f"Photo: {label}"))
        self._photo_column = 1 - self._photo_column
        pdf.set_xy(pdf.l_margin, y + (0 if left else 43))

    def end_photos(self) -> None:
        if self._photo_column:
            self.pdf.set_xy(self.pdf.l_margin, self.pdf.get_y() + 43)
            self._photo_column = 0

    def _safe(self, text: str) -> str:
        if self.family != "helvetica":
            return text
        return text.encode("latin-1", "replace").decode("latin-1")


def _fonts(pdf: FPDF) -> str:
    """The font family to use: DejaVu with a CJK fallback where installed, else Helvetica."""
    found = {name: _find(name) for name in (*_MAIN, *_CJK)}
    regular, bold = found[_MAIN[0]], found[_MAIN[1]]
    if regular is None or bold is None:
        return "helvetica"
    pdf.add_font("dejavu", "", str(regular))
    pdf.add_font("dejavu", "B", str(bold))
    cjk = next((found[name] for name in _CJK if found[name] is not None), None)
    if cjk is not None:
        pdf.add_font("cjk", "", str(cjk))
        pdf.add_font("cjk", "B", str(cjk))
        pdf.set_fallback_fonts(["cjk"], exact_match=False)
    return "dejavu"


def _find(name: str) -> Path | None:
    for directory in _FONT_DIRS:
        if directory.is_dir():
            match = next(directory.rglob(name), None)
            if match is not None:
                return match
    return None
