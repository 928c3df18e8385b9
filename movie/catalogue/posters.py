"""Generated SVG posters: MovieLens ships no images, so each movie gets a typographic one."""

from __future__ import annotations

import hashlib
import textwrap
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 300, 450
LINE_CHARS = 16
MAX_LINES = 6

# (top, bottom) gradient colours per first genre; other genres get a colour from their name.
GENRE_COLOURS = {
    "Action": ("#b91c1c", "#450a0a"),
    "Adventure": ("#c2410c", "#431407"),
    "Animation": ("#0891b2", "#083344"),
    "Children": ("#16a34a", "#052e16"),
    "Comedy": ("#ca8a04", "#422006"),
    "Crime": ("#374151", "#030712"),
    "Documentary": ("#4d7c0f", "#1a2e05"),
    "Drama": ("#7c3aed", "#2e1065"),
    "Fantasy": ("#9333ea", "#3b0764"),
    "Film-Noir": ("#1f2937", "#000000"),
    "Horror": ("#7f1d1d", "#0c0a09"),
    "IMAX": ("#0369a1", "#082f49"),
    "Musical": ("#db2777", "#500724"),
    "Mystery": ("#4338ca", "#1e1b4b"),
    "Romance": ("#e11d48", "#4c0519"),
    "Sci-Fi": ("#0e7490", "#042f2e"),
    "Thriller": ("#57534e", "#0c0a09"),
    "War": ("#65a30d", "#1a2e05"),
    "Western": ("#b45309", "#451a03"),
}


def genre_colours(genre: str | None) -> tuple[str, str]:
    if genre in GENRE_COLOURS:
        return GENRE_COLOURS[genre]
    hue = int(hashlib.sha1((genre or "").encode()).hexdigest()[:4], 16) % 360
    return f"hsl({hue},55%,42%)", f"hsl({hue},60%,12%)"


def title_lines(title: str) -> list[str]:
    lines = textwrap.wrap(title, LINE_CHARS, break_long_words=True) or [""]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][: LINE_CHARS - 1].rstrip() + "…"
    return lines


def poster_svg(*, title: str, year: int | None, genres: list[str]) -> str:
    """A 2:3 poster: gradient from the first genre, the title wrapped, year and genres below."""
    top, bottom = genre_colours(genres[0] if genres else None)
    lines = title_lines(title)
    size = 30 if len(lines) <= 3 else 24
    first_y = 150 - (len(lines) - 1) * size * 0.6
    tspans = "".join(
        f'<tspan x="24" y="{first_y + i * size * 1.2:.0f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    year_text = escape(str(year)) if year else ""
    genre_text = escape(" · ".join(genres[:3]))
    label = escape(f"{title} ({year})" if year else title, {'"': "&quot;"})
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="0.4" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        "</linearGradient></defs>"
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#g)"/>'
        f'<rect x="0" y="0" width="{WIDTH}" height="10" fill="{top}" opacity="0.9"/>'
        '<circle cx="250" cy="380" r="140" fill="#ffffff" opacity="0.05"/>'
        '<g font-family="Helvetica, Arial, sans-serif" fill="#ffffff">'
        f'<text font-size="{size}" font-weight="700">{tspans}</text>'
        f'<text x="24" y="390" font-size="26" opacity="0.9">{year_text}</text>'
        f'<text x="24" y="420" font-size="14" opacity="0.75">{genre_text}</text>'
        "</g></svg>"
    )


def poster_etag(svg: str) -> str:
    return hashlib.sha1(svg.encode()).hexdigest()[:20]
