"""The contact sheet of a job's pictures, from their PNGs. Torch-free: the worker composes it from
freshly rendered and cached pictures alike."""

import io
import math

from PIL import Image, ImageDraw, ImageFont

from core.spec import RenderSpec

GRID_MARGIN = 4
GRID_LABEL_HEIGHT = 12
GRID_BACKGROUND = (24, 24, 24)
GRID_LABEL_COLOR = (230, 230, 230)
CHECKER_SQUARE = 8
CHECKER_COLORS = ((200, 200, 200), (150, 150, 150))


def grid_labels(spec: RenderSpec, pictures: list[tuple[int, int]]) -> list[str]:
    """The label under each (filter, variant) tile: '5', '5.1' with diversity, 'class 5', or the layer."""
    if spec.objective == "layer":
        return [spec.layer or ""] * len(pictures)
    prefix = "class " if spec.objective == "class" else ""
    return [f"{prefix}{f}" + (f".{v}" if spec.diversity > 1 else "") for f, v in pictures]


def _on_checkerboard(tile: Image.Image) -> Image.Image:
    """An RGBA tile (a transparency map) over a gray checkerboard, as image viewers show transparency:
    what is transparent reads as the board, and it stands apart from the sheet's dark background."""
    if tile.mode != "RGBA":
        return tile.convert("RGB")
    width, height = tile.size
    board = Image.new("RGB", (width, height), CHECKER_COLORS[0])
    draw = ImageDraw.Draw(board)
    for top in range(0, height, CHECKER_SQUARE):
        for left in range((top // CHECKER_SQUARE) % 2 * CHECKER_SQUARE, width, 2 * CHECKER_SQUARE):
            draw.rectangle((left, top, left + CHECKER_SQUARE - 1, top + CHECKER_SQUARE - 1), fill=CHECKER_COLORS[1])
    board.paste(tile, (0, 0), tile)
    return board


def encode_grid(pngs: list[bytes], labels: list[str]) -> bytes:
    """Tiles in the given order, row by row, each with its label underneath, as one near-square PNG
    (RGBA tiles composed over a checkerboard)."""
    tiles = [_on_checkerboard(Image.open(io.BytesIO(png))) for png in pngs]
    width, height = tiles[0].size
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    cell_w, cell_h = width + GRID_MARGIN, height + GRID_LABEL_HEIGHT + GRID_MARGIN
    sheet = Image.new("RGB", (columns * cell_w + GRID_MARGIN, rows * cell_h + GRID_MARGIN), GRID_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, (tile, label) in enumerate(zip(tiles, labels, strict=True)):
        left = GRID_MARGIN + (index % columns) * cell_w
        top = GRID_MARGIN + (index // columns) * cell_h
        sheet.paste(tile, (left, top))
        draw.text((left, top + height + 1), label, fill=GRID_LABEL_COLOR, font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()
