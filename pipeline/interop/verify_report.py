"""What ``data verify`` found: one finding per check, with the fix for every problem, printed
as aligned lines; the exit status is 1 when any error was found."""

from __future__ import annotations

from dataclasses import dataclass, field

LEVELS = ("error", "warning", "ok", "info")
TAGS = {"error": "ERROR", "warning": "WARN", "ok": "ok", "info": "info"}


@dataclass(frozen=True)
class Finding:
    """level: error (a problem: exit 1) | warning (suspicious, not blocking) | ok | info."""

    level: str
    subject: str  # the file or folder concerned, relative to the root
    message: str
    fix: str = ""


@dataclass
class Report:
    """Findings in check order."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, subject: str, message: str, fix: str = "") -> None:
        assert level in LEVELS, level
        self.findings.append(Finding(level, subject, message, fix))

    def count(self, level: str) -> int:
        return sum(f.level == level for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("error") else 0

    def render(self) -> str:
        lines = []
        for f in self.findings:
            lines.append(f"{TAGS[f.level]:>6}  {f.subject}: {f.message}")
            if f.fix:
                lines.append(f"{'':>8}fix: {f.fix}")
        errors, warnings = self.count("error"), self.count("warning")
        verdict = "OK" if not errors else f"{errors} problem(s) found"
        lines.append(f"verify: {verdict}, {warnings} warning(s)")
        return "\n".join(lines)
