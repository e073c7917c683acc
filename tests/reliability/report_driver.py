"""`interp report` on the tiny model in a process of its own, for the kill-and-resume tests.

    python report_driver.py SPECS OUT

RELIABILITY_WAIT_TEXT / RELIABILITY_WAIT_FILE: the fake experiment with that text touches the file and
sleeps (killed mid-experiment); RELIABILITY_PUBLISH_WAIT_FILE: the second experiment's copy into the
report touches it and sleeps (killed mid-publish, after the copy, before it is complete).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from reliability_helpers import tiny_model

from interp.report.pipeline import make_report
from interp.report.specs import load_specs


def main() -> None:
    specs, out = Path(sys.argv[1]), Path(sys.argv[2])
    wait = os.environ.get("RELIABILITY_PUBLISH_WAIT_FILE")
    if wait:
        real, calls = shutil.copytree, []

        def copytree(src, dst, *args, **kwargs):
            result = real(src, dst, *args, **kwargs)
            if Path(dst).name.startswith(".tmp-"):  # a publish, not copytree's own recursion into a subfolder
                calls.append(dst)
            if len(calls) == 2:
                Path(wait).touch()
                time.sleep(600)
            return result

        shutil.copytree = copytree
    outcome = make_report(tiny_model(), "tiny", load_specs(specs), out, progress=False, echo=print)
    print("STATUSES", " ".join(r.status for r in outcome.runs))


if __name__ == "__main__":
    main()
