#!/usr/bin/env python
"""SASRec on ML-100K, trained from scratch to early stop: epoch time, total time, peak memory and test metrics.

    python benchmarks/bench_sasrec.py --max-len 50 200 --out reports/sasrec_ml100k

Each configuration runs in its own process so that peak memory (max RSS on CPU, allocator peak on GPU) is its
own. Writes <out>/bench.json, <out>/bench.csv and <out>/bench.png, and keeps each run folder under outputs/.
"""
import argparse, json, os, subprocess, sys
from pathlib import Path

def one(max_len, device, threads, run_root):
    import torch
    if threads: torch.set_num_threads(threads)
    from recworkbench.train import run_experiment
    from recworkbench.core import read_jsonl
    run_dir = Path(run_root)/f'sasrec-ml100k-L{max_len}'
    out = run_experiment('ml-100k', 'sasrec', out_dir=run_dir, data=dict(download=True),
                         model=dict(max_len=max_len), train=dict(device=device, progress=False),
                         overwrite=True, log=lambda *a: None)
    log = read_jsonl(run_dir/'log.jsonl')
    ep = [r['train_seconds'] for r in log]
    return dict(max_len=max_len, epochs_run=out['epochs_run'], best_epoch=out['best_epoch'],
                epoch_seconds_median=sorted(ep)[len(ep) // 2], epoch_seconds_mean=sum(ep) / len(ep),
                eval_seconds_mean=sum(r['eval_seconds'] for r in log) / len(log), train_seconds=out['train_seconds'],
                wall_seconds=out['wall_seconds'], peak_memory_mb=out['peak_memory_mb'], params=out['params'],
                **{f'test_{k}': v['mean'] for k, v in out['test'].items()},
                **{f'test_{k}_ci': [v['lo'], v['hi']] for k, v in out['test'].items() if k.endswith('@10')},
                machine=out['machine'], run_dir=str(run_dir))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--max-len', type=int, nargs='+', default=[50, 200])
    ap.add_argument('--device', default='auto'); ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--runs', default='outputs/bench'); ap.add_argument('--out', default='reports/sasrec_ml100k')
    ap.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(one(a.max_len[0], a.device, a.threads, a.runs))); return
    rows = []
    for L in a.max_len:
        cmd = [sys.executable, __file__, '--child', '--max-len', str(L), '--device', a.device, '--threads', str(a.threads), '--runs', a.runs]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0: sys.exit(f"max_len={L} failed:\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"max_len {L:4d}: {r['epochs_run']} epochs (best {r['best_epoch']}), epoch {r['epoch_seconds_median']:.2f}s median, "
              f"train {r['train_seconds']:.0f}s, wall {r['wall_seconds']:.0f}s, peak {r['peak_memory_mb']:.0f} MB, "
              f"test NDCG@10 {r['test_NDCG@10']:.4f} {r['test_NDCG@10_ci']}, HR@10 {r['test_HR@10']:.4f}", flush=True)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out/'bench.json').write_text(json.dumps(rows, indent=2))
    import pandas as pd, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    df = pd.DataFrame(rows).drop(columns=['machine']); df.to_csv(out/'bench.csv', index=False)
    fig, ax = plt.subplots(1, 3, figsize=(11, 3))
    for i, (col, lab) in enumerate([('epoch_seconds_median', 'seconds / epoch'), ('wall_seconds', 'wall seconds to early stop'), ('peak_memory_mb', 'peak memory (MB)')]):
        ax[i].bar([str(L) for L in df.max_len], df[col]); ax[i].set(xlabel='max_len', ylabel=lab)
    m = rows[0]['machine']; fig.suptitle(f"SASRec on ML-100K, {m['device']} ({m['cpus']} CPUs), torch {m['torch']}")
    fig.tight_layout(); fig.savefig(out/'bench.png', dpi=120)
    print(f"wrote {out/'bench.json'}, {out/'bench.csv'}, {out/'bench.png'}")

if __name__ == '__main__': main()
