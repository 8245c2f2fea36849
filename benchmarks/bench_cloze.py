#!/usr/bin/env python
"""Cloze (masked-item) vs prefix-sample training of bidirectional backbones on ML-100K.

    python benchmarks/bench_cloze.py train --backbone hydra4rec --seeds 0 1 2 --minutes 4
    python benchmarks/bench_cloze.py report --out reports/cloze_vs_prefix

`train` runs, for each seed, the two arms one after the other (so both see similar machine load):
- cloze:  model={'cloze': True}, train={'targets': 'cloze'} (BERT4Rec's scheme, all windows
  per epoch);
- prefix: model={'cloze': False}, train={'targets': 'last', 'samples_per_epoch': N} (one target
  per sample, N random prefix samples per epoch, as nbs/ssm_bench.ipynb trains them).
Both use the same wall-time budget (`max_minutes`), early stopping on validation NDCG@10 and one
torch thread. Each run is a run folder under outputs/cloze_vs_prefix/ written by `run_experiment`
(finished runs are left alone, so running again only trains what is missing).

`report` gathers every finished run folder: per run test NDCG@10/HR@10 with bootstrap CIs, seconds
per epoch, epochs, wall time; per seed a paired bootstrap over users (cloze - prefix, per-user
NDCG@10 recomputed from rankings.parquet); the seed-level mean and spread; a verdict that calls a
difference smaller than the run-to-run spread "no difference". Writes runs.csv, paired.csv,
summary.csv, table.md and results.json (with the machine and threads) into --out.
"""
import argparse
import os
import platform
from pathlib import Path

ARMS = {
    'cloze': dict(model={'cloze': True}, train={'targets': 'cloze'}),
    'prefix': dict(model={'cloze': False}, train={'targets': 'last'}),
}


def run_dir_of(runs:Path, backbone:str, arm:str, seed:int)->Path:
    return runs/f'{backbone}-{arm}-seed{seed}'


def train(args):
    "Both arms for every seed, seed-major (a study cut short still has complete seeds)."
    import torch
    torch.set_num_threads(args.threads)
    from recworkbench.data import load_dataset
    from recworkbench.train import run_experiment
    ds = load_dataset('ml-100k', root=args.data_root, download=True, verbose=False)
    for seed in args.seeds:
        for arm, spec in ARMS.items():
            extra = {'samples_per_epoch': args.prefix_samples} if arm == 'prefix' else {}
            train_cfg = dict(spec['train'], **extra, seed=seed, max_minutes=args.minutes,
                             patience=args.patience, progress=False, device='cpu')
            print(f'{args.backbone} {arm} seed {seed}: training', flush=True)
            run_dir = run_dir_of(args.runs, args.backbone, arm, seed)
            run_experiment('ml-100k', args.backbone, out_dir=run_dir, model=spec['model'],
                           train=train_cfg, ds=ds, data={'download': True},
                           data_root=args.data_root)


def run_row(run_dir:Path)->dict:
    "One finished run: its configuration, test metrics with CIs and timing."
    from recworkbench.core import load_json, read_jsonl
    cfg = load_json(run_dir/'config.json')
    met = load_json(run_dir/'metrics.json')
    log = read_jsonl(run_dir/'log.jsonl')
    epoch_seconds = [r['train_seconds'] for r in log]
    arm = 'cloze' if cfg['train']['targets'] == 'cloze' else 'prefix'
    test = met['test']
    return dict(backbone=cfg['backbone'], arm=arm, seed=cfg['train']['seed'],
                ndcg10=test['NDCG@10']['mean'], ndcg10_lo=test['NDCG@10']['lo'],
                ndcg10_hi=test['NDCG@10']['hi'], hr10=test['HR@10']['mean'],
                hr10_lo=test['HR@10']['lo'], hr10_hi=test['HR@10']['hi'],
                valid_ndcg10=met['valid']['NDCG@10']['mean'], epochs=met['epochs_run'],
                best_epoch=met['best_epoch'],
                seconds_per_epoch=sum(epoch_seconds) / len(epoch_seconds),
                train_s=met['train_seconds'], wall_s=met['wall_seconds'],
                max_minutes=cfg['train']['max_minutes'],
                samples_per_epoch=cfg['train']['samples_per_epoch'], run_dir=str(run_dir))


def per_user_ndcg(run_dir:Path):
    "Per-user test NDCG@10 recomputed from rankings.parquet (users in a fixed order)."
    import pandas as pd
    from recworkbench.metrics import per_user_metrics, ranks_from_lists
    frame = pd.read_parquet(run_dir/'rankings.parquet').sort_values('user')
    ranks = ranks_from_lists(frame.target.tolist(), frame['items'])
    return frame.user.to_numpy(), per_user_metrics(ranks, (10,))['NDCG@10'].to_numpy()


def paired_rows(runs):
    "Paired bootstrap over users of NDCG@10, cloze - prefix, per (backbone, seed) with both arms."
    import numpy as np
    from recworkbench.metrics import paired_bootstrap
    rows = []
    for (backbone, seed), grp in runs.groupby(['backbone', 'seed']):
        if set(grp.arm) != set(ARMS):
            continue
        dirs = {r.arm: Path(r.run_dir) for r in grp.itertuples()}
        users_c, cloze = per_user_ndcg(dirs['cloze'])
        users_p, prefix = per_user_ndcg(dirs['prefix'])
        assert np.array_equal(users_c, users_p), 'the two arms ranked different users'
        test = paired_bootstrap(prefix, cloze)
        rows.append(dict(backbone=backbone, seed=seed, diff=test['diff'], lo=test['lo'],
                         hi=test['hi'], p=test['p']))
    return rows


def verdict(diffs, spread:float)->str:
    "Real only when every seed's paired CI agrees on the sign and the mean exceeds the spread."
    import numpy as np
    mean = float(np.mean(diffs["diff"]))
    if len(diffs) < 2:
        return 'one seed only: no verdict'
    same_sign = (diffs.lo > 0).all() or (diffs.hi < 0).all()
    if abs(mean) <= spread or not same_sign:
        return 'no difference (smaller than the run-to-run spread or seeds disagree)'
    return 'cloze better' if mean > 0 else 'prefix better'


def summary_rows(runs, paired):
    "Per backbone and arm: mean and std over seeds; per backbone: the verdict."
    out = []
    for (backbone, arm), grp in runs.groupby(['backbone', 'arm']):
        out.append(dict(backbone=backbone, arm=arm, seeds=len(grp), ndcg10_mean=grp.ndcg10.mean(),
                        ndcg10_std=grp.ndcg10.std(ddof=1), hr10_mean=grp.hr10.mean(),
                        hr10_std=grp.hr10.std(ddof=1), epochs_mean=grp.epochs.mean(),
                        best_epoch_mean=grp.best_epoch.mean(),
                        seconds_per_epoch=grp.seconds_per_epoch.mean(),
                        wall_s_mean=grp.wall_s.mean()))
    return out


def report(args):
    import json
    import pandas as pd
    from recworkbench.core import save_text
    finished = sorted(d for d in args.runs.glob('*-seed*') if (d/'metrics.json').exists())
    assert finished, f'no finished run folders under {args.runs}'
    runs = pd.DataFrame([run_row(d) for d in finished])
    runs = runs.sort_values(['backbone', 'seed', 'arm'])
    assert runs[['ndcg10', 'hr10', 'seconds_per_epoch']].notna().all().all()
    paired = pd.DataFrame(paired_rows(runs))
    summary = pd.DataFrame(summary_rows(runs, paired))
    verdicts = {}
    for backbone, grp in summary.groupby('backbone'):
        spread = float(grp.ndcg10_std.max())
        diffs = paired[paired.backbone == backbone] if len(paired) else paired
        mean_diff = float(diffs['diff'].mean()) if len(diffs) else None
        verdicts[backbone] = dict(spread_ndcg10=spread, mean_diff_ndcg10=mean_diff,
                                  verdict=verdict(diffs, spread) if len(diffs) else 'no pairs')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs.drop(columns=['run_dir']).to_csv(out/'runs.csv', index=False)
    paired.to_csv(out/'paired.csv', index=False)
    summary.to_csv(out/'summary.csv', index=False)
    machine = dict(platform=platform.platform(), cpus=os.cpu_count(), torch_threads_per_run=1,
                   load_average_at_report=os.getloadavg())
    run_table = runs.drop(columns=['run_dir']).round(4).to_markdown(index=False)
    paired_table = paired.round(4).to_markdown(index=False) if len(paired) else '(none)'
    md = ['# Cloze vs prefix training on ML-100K (test split)', '', '## Runs', '', run_table, '',
          '## Paired bootstrap over users, NDCG@10 cloze - prefix (same seed)', '', paired_table,
          '', '## Over seeds', '', summary.round(4).to_markdown(index=False), '', '## Verdict', '']
    md += [f'- {b}: {v["verdict"]} (mean paired diff {v["mean_diff_ndcg10"]:+.4f}, '
           f'largest seed-level std {v["spread_ndcg10"]:.4f})' for b, v in verdicts.items()]
    md += ['', f'Machine: {machine}']
    save_text('\n'.join(md) + '\n', out/'table.md')
    results = dict(machine=machine, runs=runs.to_dict('records'),
                   paired=paired.to_dict('records'), summary=summary.to_dict('records'),
                   verdicts=verdicts)
    save_text(json.dumps(results, indent=2, default=float), out/'results.json')
    print('\n'.join(md))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('stage', choices=['train', 'report'])
    ap.add_argument('--backbone', default='hydra4rec', help='a bidirectional backbone')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--minutes', type=float, default=5.0, help='training budget per run')
    ap.add_argument('--patience', type=int, default=10)
    ap.add_argument('--prefix-samples', type=int, default=8192, help='prefix samples per epoch')
    ap.add_argument('--threads', type=int, default=1, help='torch threads per run')
    ap.add_argument('--data-root', default='data')
    ap.add_argument('--runs', type=Path, default=Path('outputs/cloze_vs_prefix'))
    ap.add_argument('--out', default='reports/cloze_vs_prefix')
    args = ap.parse_args()
    train(args) if args.stage == 'train' else report(args)


if __name__ == '__main__':
    main()
