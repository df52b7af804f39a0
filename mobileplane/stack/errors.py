"""The one error the stack manager raises: what failed, why, and what to do next."""

from __future__ import annotations

from pathlib import Path


class StackError(RuntimeError):
    """A component could not be installed, started or checked.

    ``fix`` tells the user what to do next; ``log`` points at the file holding the details.
    """

    def __init__(self, component: str, what: str, fix: str, log: Path | None = None) -> None:
        self.component = component
        self.what = what
        self.fix = fix
        self.log = log
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.component}: {self.what}", f"  next: {self.fix}"]
        if self.log is not None:
            lines.append(f"  log:  {self.log}")
            tail = _tail(self.log)
            if tail:
                lines.append("  last lines of the log:")
                lines.extend(f"    | {line}" for line in tail)
        return "\n".join(lines)


def _tail(path: Path, n: int = 12) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line[:200] for line in text.splitlines()[-n:]]
