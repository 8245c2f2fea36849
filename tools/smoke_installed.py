#!/usr/bin/env python
"""Smoke-test recworkbench AS INSTALLED: import every module and call every dataset loader on tiny files.

    python tools/smoke_installed.py                 # the python running this script
    python tools/smoke_installed.py --python venv/bin/python

The checks run in a child `python -I` (isolated: no PYTHONPATH, no script folder, no user site) started in
a temporary folder outside the repository, so only the installed package can be imported. This catches
names a module uses but only a notebook cell imports (the notebook namespace hides them from nbdev_test).
Prints one line per check and exits non-zero when any check fails.
"""
import argparse, subprocess, sys, tempfile
from pathlib import Path

CHECKS = r'''
import gzip, importlib, importlib.metadata, io, json, pkgutil, sys, tempfile, traceback, zipfile
from pathlib import Path

failures = []
def check(label, fn):
    try:
        detail = fn()
        print(f"ok    {label}" + (f": {detail}" if detail else ''))
    except BaseException as err:
        failures.append(label)
        last = traceback.extract_tb(err.__traceback__)[-1]
        print(f"FAIL  {label}: {type(err).__name__}: {err} ({Path(last.filename).name}:{last.lineno})")

import recworkbench
where = Path(recworkbench.__file__).resolve().parent
print(f"recworkbench {importlib.metadata.version('recworkbench')} from {where}")
modules = sorted(m.name for m in pkgutil.walk_packages(recworkbench.__path__, 'recworkbench.'))
for name in modules: check(f"import {name}", lambda name=name: importlib.import_module(name) and None)

from recworkbench import data
GENRES = '|'.join(['0'] * 18 + ['1'])
U_DATA = '1\t10\t5\t881250949\n1\t20\t4\t881250950\n1\t30\t3\t881250951\n'
U_ITEM = ''.join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|{GENRES}\n" for i in (10, 20, 30))
ML1M = '1::1193::5::978300760\n1::661::3::978302109\n1::914::3::978301968\n'
MOVIES = '1193::One Flew (1975)::Drama\n661::James (1996)::Animation\n914::My Fair Lady (1964)::Musical\n'

def gz(path, text): path.write_bytes(gzip.compress(text.encode()))
def jl(records): return ''.join(json.dumps(r) + '\n' for r in records)

def ml100k_folder(d):
    (d/'ml-100k').mkdir()
    (d/'ml-100k'/'u.data').write_text(U_DATA)
    (d/'ml-100k'/'u.item').write_text(U_ITEM)
    return 'ml-100k', {}

def ml100k_zip(d):
    (d/'ml-100k').mkdir()
    with zipfile.ZipFile(d/'ml-100k'/'ml-100k.zip', 'w') as z:
        z.writestr('ml-100k/u.data', U_DATA)
        z.writestr('ml-100k/u.item', U_ITEM)
    return 'ml-100k', {}

def ml1m_zip(d):
    (d/'ml-1m').mkdir()
    with zipfile.ZipFile(d/'ml-1m'/'ml-1m.zip', 'w') as z:
        z.writestr('ml-1m/ratings.dat', ML1M)
        z.writestr('ml-1m/movies.dat', MOVIES)
    return 'ml-1m', {}

def amazon2014(d):
    (d/'amazon2014').mkdir()
    gz(d/'amazon2014'/'reviews_Beauty_5.json.gz', jl(
        {'reviewerID': 'U1', 'asin': f'A{i}', 'overall': 5.0, 'unixReviewTime': 1400000000 + i} for i in range(3)))
    gz(d/'amazon2014'/'meta_Beauty.json.gz', "{'asin': 'A0', 'title': 'Soap', 'categories': [['Beauty']]}\n")
    return 'amazon2014:Beauty', {}

def amazon2023(d):
    (d/'amazon2023').mkdir()
    gz(d/'amazon2023'/'All_Beauty.jsonl.gz', jl(
        {'user_id': 'U1', 'parent_asin': f'P{i}', 'rating': 4.0, 'timestamp': 1588687728923 + i} for i in range(3)))
    (d/'amazon2023'/'meta_All_Beauty.jsonl').write_text(jl([{'parent_asin': 'P0', 'title': 'Soap'}]))
    return 'amazon2023:All_Beauty', {}

def recbole(d):
    (d/'rb').mkdir()
    (d/'rb'/'toy.inter').write_text('user_id:token\titem_id:token\trating:float\ttimestamp:float\n'
                                    'u1\t10\t5\t100\nu1\t20\t4\t101\nu1\t30\t3\t102\n')
    (d/'rb'/'toy.item').write_text('item_id:token\ttitle:token_seq\tcategories:token_seq\n10\tSoap Bar\tBeauty\n')
    return f'recbole:{d}/rb', {}

def table_csv(d):
    (d/'log.csv').write_text('uid,iid,ts\nu1,a,1\nu1,b,2\nu1,c,3\n')
    return f'table:{d}/log.csv', dict(user='uid', item='iid', timestamp='ts')

def table_parquet(d):
    import pandas as pd
    pd.DataFrame({'user': ['u1'] * 3, 'item': list('abc'), 'timestamp': [1, 2, 3]}).to_parquet(d/'log.parquet')
    return f'table:{d}/log.parquet', {}

def seqlines(d):
    (d/'seq.txt').write_text('1 10\n1 20\n1 30\n')
    return f'seqlines:{d}/seq.txt', {}

def synthetic(d): return 'synthetic', dict(n_users=5, n_items=10, mean_len=4)

FIXTURES = {'ml-100k': [ml100k_folder, ml100k_zip], 'ml-1m': [ml1m_zip], 'amazon2014': [amazon2014],
            'amazon2023': [amazon2023], 'recbole': [recbole], 'table': [table_csv, table_parquet],
            'seqlines': [seqlines], 'synthetic': [synthetic]}

def run_fixture(fixture):
    with tempfile.TemporaryDirectory() as tmp:
        name, options = fixture(Path(tmp))
        given = options if name == 'synthetic' else {'options': options} if options else {}
        raw = data.load_raw(name, root=tmp, **given)
        ds = data.load_dataset(name, root=tmp, verbose=False, **given)
        return f"{name.split(':')[0]}: {len(raw.interactions)} interactions -> {ds!r}"

registered = list(getattr(data, 'LOADERS', None) or FIXTURES)
for fmt in registered:
    if fmt not in FIXTURES:
        check(f"loader {fmt}", lambda fmt=fmt: (_ for _ in ()).throw(AssertionError('no smoke fixture')))
for fmt, fixtures in FIXTURES.items():
    for fixture in fixtures:
        check(f"loader {fmt} ({fixture.__name__})", lambda fixture=fixture: run_fixture(fixture))
print(f"{len(failures)} failed" + (f": {', '.join(failures)}" if failures else ''))
sys.exit(1 if failures else 0)
'''

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--python', default=sys.executable, help='interpreter whose installed recworkbench to test')
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix='rwb-smoke-') as cwd:
        if Path(cwd).resolve().is_relative_to(repo): sys.exit(f"temporary folder {cwd} is inside {repo}")
        res = subprocess.run([args.python, '-I', '-c', CHECKS], cwd=cwd)
    sys.exit(res.returncode)

if __name__ == '__main__': main()
