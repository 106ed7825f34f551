#!/usr/bin/env python3
"""Write the golden files of testbed/tests/harness.py's scenarios.

They were generated from the single-file program as it was before the package (commit eefd98d):
    git show eefd98d:testbed/testbed > /tmp/old_testbed.py
    python3 testbed/tests/golden/generate.py /tmp/old_testbed.py
Regenerate them from the package (`--new`) only for a deliberate change of what the bed writes, and say so
in the commit.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402


def main() -> None:
    if sys.argv[1:] == ["--new"]:
        import test_golden  # noqa: E402
        target: harness.Target = test_golden.NewTarget()
    elif len(sys.argv) == 2:
        target = harness.OldTarget(sys.argv[1])
    else:
        sys.exit("usage: generate.py OLD_TESTBED_FILE | --new")
    here = os.path.dirname(os.path.abspath(__file__))
    for name in harness.SCENARIOS:
        d = os.path.join(here, name)
        os.makedirs(d, exist_ok=True)
        for fn, content in harness.render(target, name).items():
            with open(os.path.join(d, fn), "w") as f:
                f.write(content)
        print("golden:", name)


if __name__ == "__main__":
    main()
