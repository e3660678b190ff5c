"""One checked invariant, as the chaos report prints it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Invariant:
    name: str
    holds: bool
    detail: str

    @classmethod
    def of(cls, name: str, problems: list[str], fine: str) -> "Invariant":
        """Holds without problems; else the first few name what broke."""
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return cls(name, not problems, "; ".join(problems[:5]) + more if problems else fine)

    def line(self) -> str:
        return f"  [{'PASS' if self.holds else 'FAIL'}] {self.name}: {self.detail}"
