"""The operations console: read-only pages over the stores the loop writes.

`queries` reads (every read paged and capped, never a full scan), `charts`
draws the daily series as inline SVG, `pages` renders the Jinja templates
in `templates/` (one base layout, one template a page, every value escaped).
`functions/console.py` is the thin HTTP entry point in front of them.
"""
