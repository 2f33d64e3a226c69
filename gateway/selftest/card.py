"""``nmvs-gateway card``: the printable scanner calibration card (A4, PDF or PNG).

The Data Matrix symbols are encoded by zxing-cpp (whose writer is zint): GS1 codes are given in
``[AI]value`` form so that every separator becomes the FNC1 codeword, never a literal GS byte;
the IFA PPN is a plain Data Matrix holding its ``[)>`` header, RS, GS and EOT as data. Each
symbol is checked against the payload it must carry before it is drawn.

One page layout (positions in millimetres) is drawn by two renderers: fpdf2 for PDF (real text)
and Pillow for PNG (300 dpi). Symbols are drawn with a whole number of pixels per module at
300 dpi in both, so a printed or rasterised card has square, sharp modules.
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gateway.selftest.card_codes import CARD_CODES, CardCode, gs1_bracketed

if TYPE_CHECKING:
    from PIL import Image

DPI: Final = 300
PIXELS_PER_MODULE: Final = 6  # 0.508 mm modules: easy for any 2D scanner from paper
PAGE_MM: Final = (210.0, 297.0)
MARGIN_MM: Final = 15.0
_MM_PER_INCH: Final = 25.4
# The PDF uses the standard PDF fonts (nothing to embed); the PNG needs TrueType fonts with
# accented letters, which Pillow's built-in font lacks.
PNG_FONT_DIR: Final = Path("/usr/share/fonts/truetype/dejavu")
PNG_FONTS: Final = {
    (False, False): "DejaVuSans.ttf",
    (False, True): "DejaVuSans-Bold.ttf",
    (True, False): "DejaVuSansMono.ttf",
    (True, True): "DejaVuSansMono-Bold.ttf",
}

TITLE: Final = "nmvs-gateway - scanner calibration card / carte d'étalonnage des scanners"
INSTRUCTIONS_EN: Final = (
    "Print at 100\u00a0% (no 'fit to page'). Name the scanner in /etc/nmvs-gateway/gateway.toml, then run "
    "on the gateway:  nmvs-gateway selftest --calibrate SCANNER  and scan the CALIBRATION code when "
    "asked. The report gives the scanner's keyboard layout, how it sends GS, AIM id, prefix/suffix "
    "and case changes; add --write-config to save them. Then scan the three pack codes: each must be "
    "read exactly as printed under it."
)
INSTRUCTIONS_FR: Final = (
    "Imprimer à 100\u00a0% (sans «\u00a0ajuster à la page\u00a0»). Nommer le scanner dans "
    "/etc/nmvs-gateway/gateway.toml, puis lancer sur la passerelle\u00a0:  nmvs-gateway selftest "
    "--calibrate SCANNER  et scanner le code d'ÉTALONNAGE quand c'est demandé. Le rapport donne la "
    "disposition clavier du scanner, son envoi du GS, l'identifiant AIM, préfixe/suffixe et "
    "changements de casse\u00a0; --write-config les enregistre. Scanner ensuite les trois codes de "
    "boîtes\u00a0: chacun doit être lu exactement comme imprimé dessous."
)


class CardError(Exception):
    """The card cannot be produced; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float  # baseline
    size: float  # points
    text: str
    monospace: bool = False
    bold: bool = False


@dataclass(frozen=True, slots=True)
class Symbol:
    x: float
    y: float  # top edge
    code: CardCode
    modules: Image.Image  # one pixel per module, black on white, no quiet zone

    @property
    def width_mm(self) -> float:
        return self.modules.width * PIXELS_PER_MODULE * _MM_PER_INCH / DPI


def encode(code: CardCode) -> Image.Image:
    """The Data Matrix for ``code``, one pixel per module, after checking what it carries."""
    import zxingcpp
    from PIL import Image

    if code.kind == "gs1":
        barcode = zxingcpp.create_barcode(
            gs1_bracketed(code.elements),
            zxingcpp.BarcodeFormat.DataMatrix,
            gs1=True,
            forceSquare=True,
        )
    else:
        barcode = zxingcpp.create_barcode(
            code.payload, zxingcpp.BarcodeFormat.DataMatrix, forceSquare=True
        )
    # zxing-cpp ignores options it does not know; make sure the symbol is what the card promises.
    if barcode.symbology_identifier != code.aim or barcode.bytes != code.payload.encode("ascii"):
        raise CardError(
            f"the Data Matrix encoder produced {barcode.symbology_identifier} {barcode.bytes!r} "
            f"for the {code.key} code instead of {code.aim} {code.payload.encode('ascii')!r}; "
            "install the zxing-cpp version pinned in pyproject.toml"
        )
    image = zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=False)
    height, width = image.shape
    # zxingcpp.Image implements the buffer protocol; its type stub does not declare it.
    pixels = memoryview(image)  # type: ignore[arg-type]
    return Image.frombytes("L", (width, height), pixels.tobytes())


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False)


def layout(symbols: dict[str, Image.Image]) -> list[Text | Symbol]:
    """The page: title, instructions in English and French, then a 2 x 2 grid of captioned codes."""
    items: list[Text | Symbol] = [Text(MARGIN_MM, MARGIN_MM + 5, 12, TITLE, bold=True)]
    y = MARGIN_MM + 14
    for paragraph in (INSTRUCTIONS_EN, INSTRUCTIONS_FR):
        for line in _wrap(paragraph, 96):
            items.append(Text(MARGIN_MM, y, 9, line))
            y += 4.4
        y += 2.5
    cell_width = (PAGE_MM[0] - 2 * MARGIN_MM) / 2
    cell_height = 98.0
    for index, code in enumerate(CARD_CODES):
        x = MARGIN_MM + (index % 2) * cell_width
        top = y + 4 + (index // 2) * cell_height
        items.append(
            Text(x, top, 10, f"{index + 1}. {code.key.upper()}   AIM {code.aim}", bold=True)
        )
        symbol = Symbol(x + 4, top + 5, code, symbols[code.key])
        items.append(symbol)
        line_y = top + 5 + symbol.width_mm + 7
        for line in code.readable_lines():
            items.append(Text(x, line_y, 8, line, monospace=True))
            line_y += 3.8
        line_y += 2
        for caption in (code.caption_en, code.caption_fr):
            for line in _wrap(caption, 46):
                items.append(Text(x, line_y, 9, line))
                line_y += 4.2
            line_y += 1.5
    return items


def _px(mm: float) -> int:
    return round(mm * DPI / _MM_PER_INCH)


def _scaled(modules: Image.Image) -> Image.Image:
    from PIL import Image

    return modules.resize(
        (modules.width * PIXELS_PER_MODULE, modules.height * PIXELS_PER_MODULE),
        Image.Resampling.NEAREST,
    )


def render_pdf(items: list[Text | Symbol], out: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_creator("nmvs-gateway card")
    pdf.add_page()
    for item in items:
        if isinstance(item, Text):
            pdf.set_font(
                "Courier" if item.monospace else "Helvetica", "B" if item.bold else "", item.size
            )
            pdf.text(item.x, item.y, item.text)
        else:
            pdf.image(_scaled(item.modules), item.x, item.y, w=item.width_mm, h=item.width_mm)
    pdf.output(str(out))


def render_png(items: list[Text | Symbol], out: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    missing = [name for name in PNG_FONTS.values() if not (PNG_FONT_DIR / name).is_file()]
    if missing:
        raise CardError(
            f"the PNG card needs the DejaVu fonts ({', '.join(missing)} not in {PNG_FONT_DIR}): "
            "install the Debian package fonts-dejavu-core, or write a PDF card instead"
        )
    page = Image.new("L", (_px(PAGE_MM[0]), _px(PAGE_MM[1])), 255)
    draw = ImageDraw.Draw(page)
    for item in items:
        if isinstance(item, Text):
            font_file = PNG_FONT_DIR / PNG_FONTS[item.monospace, item.bold]
            font = ImageFont.truetype(str(font_file), size=item.size * DPI / 72)
            draw.text((_px(item.x), _px(item.y)), item.text, fill=0, font=font, anchor="ls")
        else:
            page.paste(_scaled(item.modules), (_px(item.x), _px(item.y)))
    page.save(out, format="PNG", dpi=(DPI, DPI))


def write_card(out: Path) -> None:
    """Write the card to ``out``: PNG when the name ends in ``.png``, PDF otherwise."""
    if not out.parent.is_dir():
        raise CardError(f"cannot write {out}: the folder {out.parent} does not exist")
    items = layout({code.key: encode(code) for code in CARD_CODES})
    try:
        if out.suffix.lower() == ".png":
            render_png(items, out)
        else:
            render_pdf(items, out)
    except OSError as exc:
        raise CardError(f"cannot write {out}: {exc.strerror or exc}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="where to write the card: PNG if FILE ends in .png, otherwise PDF",
    )


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        write_card(out)
    except CardError as exc:
        print(f"nmvs-gateway card: {exc}")
        return 1
    print(
        f"calibration card written to {out}; print it at 100 % and run: nmvs-gateway selftest --calibrate SCANNER"
    )
    return 0
