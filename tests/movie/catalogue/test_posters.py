import xml.etree.ElementTree as ET

from movie.catalogue.posters import genre_colours, poster_svg, title_lines

SVG = "{http://www.w3.org/2000/svg}"


def test_poster_is_valid_svg_with_escaped_title():
    svg = poster_svg(title='Tom & Jerry <"Live">', year=1999, genres=["Animation", "Comedy"])
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}tspan"))
    assert text == 'Tom & Jerry <"Live">'
    assert root.get("aria-label") == 'Tom & Jerry <"Live"> (1999)'
    assert "<\"Live\">" not in svg


def test_long_titles_wrap_and_stop():
    lines = title_lines("The Lord of the Rings: The Return of the King, "
                        "extended edition with appendices and more")
    assert 1 < len(lines) <= 6 and all(len(line) <= 16 for line in lines) and lines[-1].endswith("…")


def test_colours_follow_the_first_genre():
    assert genre_colours("Horror") != genre_colours("Comedy")
    assert genre_colours("Made-Up") == genre_colours("Made-Up")
    ET.fromstring(poster_svg(title="", year=None, genres=[]))
