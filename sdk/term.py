"""Output that reads well in a terminal and outside one (a pipe, a file, a CI log).

rich sizes everything to the console's width, and a console that is not a terminal is 80 columns
wide: a table piped to a file is squeezed until its headers read "stat…" and its figures wrap.
Outside a terminal these helpers print a table at the width its content needs, so every figure
survives, and let live displays fall back to one plain line per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, RenderableType
from rich.measure import Measurement

__all__ = ["WIDE", "interactive", "natural_width", "output_console", "print_fitted", "working"]

# The most columns a fitted table may take outside a terminal: wide enough for any table this CLI
# prints (a 64-hex-digit hash plus its neighbours), small enough that a runaway cell cannot make a
# megabyte-wide line.
WIDE = 400


def interactive(console: Console) -> bool:
    """Whether `console` is a real terminal, where live displays and width-fitted tables make sense."""
    return console.is_terminal and not console.is_dumb_terminal


def output_console() -> Console:
    """A console for a command's output: off a terminal, long lines stay whole instead of wrapping at 80."""
    console = Console()
    if not interactive(console):
        console.soft_wrap = True
    return console


def natural_width(console: Console, renderable: RenderableType, limit: int = WIDE) -> int:
    """The columns `renderable` takes when nothing squeezes it (at most `limit`)."""
    options = console.options.update(max_width=limit)
    return min(limit, Measurement.get(console, options, renderable).maximum)


def print_fitted(console: Console, renderable: RenderableType) -> None:
    """Print `renderable`: at the terminal's width in a terminal, else at the width its content needs."""
    if interactive(console):
        console.print(renderable)
        return
    # console.print(width=) is capped at the console's own width, so widen the console itself for
    # this one print and put it back.
    saved = console.width
    console.width = max(saved, natural_width(console, renderable))
    try:
        console.print(renderable, crop=False)
    finally:
        console.width = saved


@contextmanager
def working(console: Console, message: str) -> Iterator[None]:
    """A spinner with `message` in a terminal; elsewhere the message as one line (a spinner prints nothing there)."""
    if interactive(console):
        with console.status(message):
            yield
        return
    console.print(message, soft_wrap=True, highlight=False)
    yield
