"""Headless-execution check for dashboard cells: how many cells wait out papermill's execution timeout.

Runs a generated notebook of N dashboard cells through papermill R times for each of two ways of putting
a figure into an `ipywidgets.Output`: 'capture' (`clear_output()` + `with out: show(fig)`, which nbclient
mirrors back to the kernel on the shell channel) and 'direct' (the kernel sets `out.outputs`, what
`recworkbench.analysis.dashboard` does). A cell that loses nbclient's wake-up sits until the timeout;
such cells are counted. Usage: python tools/widget_stall_check.py [--cells 60] [--runs 8] [--timeout 30]
"""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path
import nbformat

SETUP = {
    'capture': '''import ipywidgets as w, plotly.graph_objects as go, plotly.io as pio
def show(out, fig):
    out.clear_output()
    with out:
        pio.show(fig, renderer='plotly_mimetype')''',
    'direct': '''import ipywidgets as w, plotly.graph_objects as go
from recworkbench.analysis import _show as show''',
}
CELL = '''out = w.Output()
show(out, go.Figure(go.Scatter(y=[0, 1, 2])))
show(out, go.Figure(go.Scatter(y=[0, 1, 2, 3])))
out'''


def notebook(way:str, n_cells:int)->nbformat.NotebookNode:
    "A notebook: the setup for `way`, then `n_cells` cells that each show two figures in an Output."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP[way])]
    nb.cells += [nbformat.v4.new_code_cell(CELL) for _ in range(n_cells)]
    nb.metadata['kernelspec'] = dict(name='python3', display_name='python3', language='python')
    return nb


def stalled_cells(path:Path, timeout:int)->int:
    "Cells of an executed notebook whose duration reached 90% of the execution timeout."
    cells = json.loads(path.read_text())['cells']
    durations = [c['metadata'].get('papermill', {}).get('duration') or 0 for c in cells]
    return sum(d >= 0.9 * timeout for d in durations)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cells', type=int, default=60)
    ap.add_argument('--runs', type=int, default=8)
    ap.add_argument('--timeout', type=int, default=30)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp())
    totals = {way: dict(stalled=0, cells=0, seconds=0.0) for way in SETUP}
    for run in range(args.runs):                  # the two ways interleaved, so load hits both alike
        for way in SETUP:
            src, dst = work/f'{way}.ipynb', work/f'{way}_{run}.ipynb'
            nbformat.write(notebook(way, args.cells), src)
            start = time.perf_counter()
            subprocess.run(['papermill', '--log-level', 'ERROR', '--execution-timeout', str(args.timeout),
                            str(src), str(dst)], check=True, capture_output=True)
            totals[way]['seconds'] += time.perf_counter() - start
            totals[way]['stalled'] += stalled_cells(dst, args.timeout)
            totals[way]['cells'] += args.cells
    for way, t in totals.items():
        print(f"{way:8s} {t['stalled']:4d} of {t['cells']} cells waited out the {args.timeout}s timeout; "
              f"{t['seconds'] / args.runs:.1f} s per run")
    return 0


if __name__ == '__main__':
    sys.exit(main())
