"""halospec-tui: speculative-decoding draft-length benchmark with a live terminal monitor.

The package root stays light: importing it must not load Textual, numpy or httpx,
because CPU burner processes and the headless path import it too.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("halospec-tui")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
