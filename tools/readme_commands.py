#!/usr/bin/env python
"""Print the README's setup, main-job and test commands, exactly as written there, one per line.

CI runs these lines verbatim in a fresh clone, so the README cannot drift from what is tested. Each command is the
first line of the first ```bash block under the headings "## Install", "## Main job" and "## Tests".
"""
import re, sys
from pathlib import Path

HEADINGS = ('## Install', '## Main job', '## Tests')

def commands(readme:str)->list[str]:
    out = []
    for heading in HEADINGS:
        at = readme.find('\n' + heading)
        if at < 0: sys.exit(f"README.md: no section starting with {heading!r}")
        block = re.search(r"```bash\n(.+?)\n", readme[at:])
        if block is None: sys.exit(f"README.md: no ```bash block under {heading!r}")
        out.append(block.group(1).strip())
    return out

if __name__ == '__main__':
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]/'README.md')
    print('\n'.join(commands(path.read_text())))
