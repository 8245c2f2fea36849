#!/usr/bin/env python
"""Density figures of the library's exported code, read from the notebooks: mean code-line length, lines over 100 and
120 characters, `;`-joined statements, and the size of exported cells (median, number over 40 lines).

    python tools/code_stats.py            # this checkout
    python tools/code_stats.py --rev REV  # the notebooks at a git revision (e.g. to compare before/after)
"""
import argparse, io, json, statistics, subprocess, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def notebooks(rev:str|None)->dict:
    "name -> notebook JSON of every library notebook (nbs/[0-9]*.ipynb) in the tree or at `rev`."
    if rev is None: return {p.name: json.loads(p.read_text()) for p in sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))}
    names = subprocess.run(['git', 'ls-tree', '--name-only', rev, 'nbs/'], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    show = lambda n: subprocess.run(['git', 'show', f'{rev}:{n}'], cwd=ROOT, capture_output=True, text=True).stdout
    return {Path(n).name: json.loads(show(n)) for n in names if Path(n).name[0].isdigit() and n.endswith('.ipynb')}

def semicolons(source:str)->int:
    "Statements joined by `;` (operator tokens, so strings and comments do not count)."
    try: toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError): return source.count(';')
    return sum(1 for t in toks if t.type == tokenize.OP and t.string == ';')

def stats(nbs:dict)->dict:
    cells = [''.join(c['source']) for nb in nbs.values() for c in nb['cells']
             if c['cell_type'] == 'code' and ''.join(c['source']).lstrip().startswith(('#| export', '#|export'))]
    lines = [l for c in cells for l in c.splitlines()[1:] if l.strip() and not l.strip().startswith('#')]
    sizes = [len(c.splitlines()) - 1 for c in cells]
    return dict(export_cells=len(cells), code_lines=len(lines), mean_line_chars=round(statistics.mean(map(len, lines)), 1),
                lines_over_100=sum(len(l) > 100 for l in lines), lines_over_120=sum(len(l) > 120 for l in lines),
                semicolon_statements=sum(semicolons(c) for c in cells), median_cell_lines=statistics.median(sizes),
                cells_over_40_lines=sum(s > 40 for s in sizes))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rev', default=None, help='git revision to read the notebooks from (default: the work tree)')
    print(json.dumps(stats(notebooks(ap.parse_args().rev)), indent=2))
