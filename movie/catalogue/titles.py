"""Titles as people write them. MovieLens keeps a title's article at its end, the way a library
sorts it ("Matrix, The", "Auberge espagnole, L'"); the pages show "The Matrix" and
"L'Auberge espagnole", and keep the stored form for sorting. Pure functions: no Django."""

from __future__ import annotations

import re

# The articles MovieLens moves to a title's end: English, French, Italian, Spanish, German,
# Portuguese, Dutch and Scandinavian. Case as written; "L'" joins its word without a space.
ARTICLES = frozenset({
    "The", "A", "An",
    "Le", "La", "Les", "L'", "Un", "Une",
    "Il", "Lo", "I", "Gli", "Uno", "Una",
    "El", "Los", "Las",
    "Der", "Die", "Das", "Ein", "Eine",
    "O", "Os", "As", "Um", "Uma",
    "De", "Het", "Een",
    "Den", "Det", "En", "Ett",
})
_BY_LOWER = {article.lower(): article for article in ARTICLES}
_SORT_FORM = re.compile(r"^(?P<rest>.+), (?P<article>[^\s,()]+)$")
# A title and its alternates: "City of Lost Children, The (Cité des enfants perdus, La)".
_ALTERNATES = re.compile(r"^(?P<main>.*?)(?P<alternates>(?: \([^()]*\))*)$")
_AKA = "a.k.a. "


def _front(segment: str) -> str:
    """One title's article moved to its front; anything else as it was."""
    prefix = _AKA if segment.startswith(_AKA) else ""
    found = _SORT_FORM.match(segment[len(prefix):])
    if found is None or found["article"] not in ARTICLES:
        return segment
    article = found["article"]
    return f"{prefix}{article}{'' if article.endswith(chr(39)) else ' '}{found['rest']}"


def title_display(title: str) -> str:
    """ "Shawshank Redemption, The" -> "The Shawshank Redemption"; each alternate title in
    parentheses too: "Postman, The (Postino, Il)" -> "The Postman (Il Postino)"."""
    parts = _ALTERNATES.match(title)
    if parts is None or not parts["main"]:
        return _front(title)
    alternates = re.findall(r" \(([^()]*)\)", parts["alternates"])
    return _front(parts["main"]) + "".join(f" ({_front(alt)})" for alt in alternates)


def query_article_split(query: str) -> tuple[str, str] | None:
    """("The", "Matrix") for a search that starts with an article, as "the matrix" does:
    the stored title reads "Matrix, The", so the search also looks for the rest with the
    article at its end. None when the query does not start with one."""
    words = query.strip().split(None, 1)
    if len(words) == 2 and words[0].lower() in _BY_LOWER:
        return _BY_LOWER[words[0].lower()], words[1]
    found = re.match(r"^(l')(\S.*)$", query.strip(), flags=re.IGNORECASE)  # "L'Auberge"
    return ("L'", found[2]) if found else None
