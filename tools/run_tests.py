#!/usr/bin/env python
"""Run the project's tests: every library notebook under nbdev_test, then each experiment notebook through
papermill with tiny parameters. Prints one line per test and ends with `N passed, N failed`.

    python tools/run_tests.py                 # default tests (CPU, ~10 minutes on 2 cores)
    python tools/run_tests.py --flags slow    # also the cells marked #| slow
    python tools/run_tests.py --flags "slow gpu" --only 04a_ssm   # GPU checks on a CUDA machine
"""
import argparse, json, os, re, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
# experiment notebooks: papermill parameters that make them finish in a minute or two
SMOKE = {
    'train.ipynb': dict(dataset='synthetic', train={'epochs': 2}),
    'ssm_bench.ipynb': dict(dataset='synthetic', seeds=[0], train={'epochs': 1},
                            latency={'n_samples': 2, 'sample_size': 20}),
    'usgm.ipynb': dict(train={'epochs': 1}, seeds=[0]),
    'rodpo.ipynb': dict(train={'epochs': 1}, align={'epochs': 1},
                        sweep={'mode': 'line', 'pool_size': [1, 5], 'beta': [], 'align_lr': [0.0001]},
                        latency_samples=3),
    'sweep.ipynb': dict(spec='sweeps/smoke.yaml', runs_in_out_dir=True),
    'llm_rank.ipynb': dict(lm='pkg:tinycoder', backbones=['sasrec'], train={'epochs': 1}, n_users=30,
                           n_train=8, n_valid=4, query_lm={'d_model': 16, 'n_layers': 1, 'n_heads': 2},
                           query_train={'per_user': 1}, bm25_grid={'k1s': [1.2], 'bs': [0.75]},
                           latency={'n_samples': 2, 'sample_size': 20},
                           lm_latency={'n_samples': 2, 'sample_size': 2}),
}

def run(cmd, env):
    t0 = time.time()
    res = subprocess.run(cmd, cwd=NBS, env=env, capture_output=True, text=True)
    return res.returncode == 0, time.time() - t0, (res.stdout + res.stderr)[-4000:]

def library_test(nb, flags, env):
    cmd = ['nbdev_test', '--path', nb.name, '--n_workers', '0'] + (['--flags', flags] if flags else [])
    return run(cmd, env)

def experiment_test(nb, params, env, tmp):
    out = Path(tmp)/nb.stem
    cmd = ['papermill', nb.name, str(out) + '.ipynb', '-k', 'python3', '--no-progress-bar', '-p', 'out_dir', str(out),
           '--execution-timeout', '900']      # a stalled cell fails the test instead of holding the run forever
    for k, v in params.items():          # lists and dicts as YAML (JSON is YAML), scalars as plain -p values
        cmd += ['-y', f'{k}: {json.dumps(v)}'] if isinstance(v, (list, dict)) else ['-p', k, str(v)]
    return run(cmd, env)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--flags', default='', help='nbdev test flags to enable, e.g. "slow" or "slow gpu"')
    ap.add_argument('--only', default='', help='regex: run only notebooks whose name matches')
    ap.add_argument('--workers', type=int, default=2, help='notebooks run at once')
    ap.add_argument('--no-experiments', action='store_true', help='skip the papermill runs of experiment notebooks')
    a = ap.parse_args()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'}  # no oversubscription with parallel notebooks
    libs = sorted(p for p in NBS.glob('[0-9]*.ipynb') if re.search(a.only, p.name))
    exps = [NBS/n for n in SMOKE if (NBS/n).exists() and re.search(a.only, n) and not a.no_experiments]
    results = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.workers) as pool:
        jobs = [(nb.name, pool.submit(library_test, nb, a.flags, env)) for nb in libs]
        jobs += [(f'{nb.name} (papermill)', pool.submit(experiment_test, nb, SMOKE[nb.name], env, tmp)) for nb in exps]
        for name, fut in jobs:
            ok, secs, out = fut.result()
            print(f"{'PASS' if ok else 'FAIL'} {name} ({secs:.0f}s)", flush=True)
            if not ok: print('\n'.join('    ' + l for l in out.splitlines()[-40:]), flush=True)
            results.append(ok)
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)

if __name__ == '__main__': main()
