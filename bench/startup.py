"""Startup cost: `opsctl --version` and `--help` against `python -c "import typer"`.

Cron runs opsctl every minute; a CLI that imports its database driver and AWS SDK just to
print its version wastes that on every run. Target: within 2x of importing typer alone.
"""

from __future__ import annotations

import sys

from harness import best_of, report


def main() -> None:
    runs = 15
    peer = best_of(runs, 'python -c "import typer"', [sys.executable, "-c", "import typer"])
    for args in (["--version"], ["--help"]):
        ours = best_of(runs, f"opsctl {' '.join(args)}", [sys.executable, "-m", "opsctl", *args],
                       {"COLUMNS": "100"})
        report(f"startup: opsctl {' '.join(args)} (median of {runs})", ours, peer,
               target_ratio=2.0)


if __name__ == "__main__":
    main()
