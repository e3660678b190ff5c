"""A dependency-free progress bar for the terminal."""

import sys


def progress_bar(label: str, done: int, total: int, extra: str = "", width: int = 30) -> None:
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done >= total else ""
    sys.stdout.write(f"\r{label:<10} [{bar}] {done}/{total} {extra:<40}{end}")
    sys.stdout.flush()
