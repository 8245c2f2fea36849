#!/usr/bin/env python
"""Our SASRec vs RePlay's SasRec on ML-100K, each trained to early stop on one CPU thread.

    python benchmarks/bench_peers.py --seeds 0 1 2 --out reports/sasrec_peers

For every seed the two arms run one after the other (ours seed 0, RePlay seed 0, ours seed 1, ...),
each in its own process with one torch thread, so both see similar machine load. RePlay runs in its
own virtualenv (`--peer-python`, default /work/venvs/replay/bin/python, holding
replay-rec[torch]==0.22.0).

Both arms train on the same 2,412 windows of the same split (RePlay gets our internal sequences in
file order, `sliding_window_step=50`), with Adam betas (0.9, 0.999), full softmax CE, early
stopping on full-ranking validation NDCG@10 with the same patience rule (a lightning callback
for RePlay), and the best epoch's weights. RePlay's trained model is scored on OUR test split by
OUR metrics code (full ranking over all items, pessimistic ties), so the paired per-user bootstrap
of NDCG@10 (ours - RePlay) runs on identical users. Timed: training to early stop, validations
included (ours: `run_experiment`'s wall_seconds; RePlay: `Trainer.fit`).

`--ours` takes JSON overrides of our run, e.g.
'{"train": {"batch_size": 256}, "optim": {"lr": 2e-3}}'.
Writes <out>/bench.json, bench.csv, paired.csv, bench.png and README.md; run folders go to --runs.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

PEER_PYTHON = '/work/venvs/replay/bin/python'
SHARED = dict(d_model=64, n_layers=2, n_heads=2, dropout=0.2, max_len=50, lr=1e-3, batch_size=128)

# ---------------------------------------------------------------- children (one run each)

def _threads(n:int):
    "Pin torch (and its BLAS) to `n` threads before any work."
    import torch
    torch.set_num_threads(n)
    return torch

def _per_user(scores, ds, split:str):
    "Per-user metrics of (B, n_items + 1) scores over `split` with our ranking code."
    import torch
    from recworkbench.metrics import mask_scores, target_ranks, per_user_metrics
    targets = torch.as_tensor(ds.targets(split))
    return per_user_metrics(target_ranks(mask_scores(scores, keep=targets), targets), (5, 10, 20))

def ours_child(a) -> dict:
    "Train our SASRec to early stop; per-user test metrics saved next to the run folder."
    _threads(a.threads)
    from recworkbench.train import run_experiment
    from recworkbench.evaluation import evaluate
    from recworkbench.core import read_jsonl
    over = json.loads(a.ours)
    model = {**dict(d_model=SHARED['d_model'], n_layers=SHARED['n_layers'],
                    n_heads=SHARED['n_heads'], dropout=SHARED['dropout'],
                    max_len=SHARED['max_len']), **over.get('model', {})}
    train = {**dict(device='cpu', progress=False, seed=a.seed, patience=a.patience,
                    batch_size=SHARED['batch_size']), **over.get('train', {})}
    optim = {**dict(name='adam', lr=SHARED['lr'], betas=(0.9, 0.999)), **over.get('optim', {})}
    run_dir = Path(a.runs)/f'ours-seed{a.seed}'
    out = run_experiment('ml-100k', 'sasrec', out_dir=run_dir, data=dict(download=True),
                         model=model, train=train, optim=optim, overwrite=True,
                         log=lambda *x: None)
    _, per_user, _ = evaluate(out['net'], out['ds'], 'test', n_boot=10)
    per_user.to_csv(run_dir/'test_per_user.csv', index=False)
    log = read_jsonl(run_dir/'log.jsonl')
    return dict(arm='ours', seed=a.seed, seconds=out['wall_seconds'], epochs_run=out['epochs_run'],
                best_epoch=out['best_epoch'],
                epoch_seconds=_median([r['train_seconds'] for r in log]),
                eval_seconds=_median([r['eval_seconds'] for r in log]),
                valid_ndcg10=out['valid']['NDCG@10']['mean'],
                test_ndcg10=float(per_user['NDCG@10'].mean()),
                test_hr10=float(per_user['HR@10'].mean()), params=out['params'],
                per_user=str(run_dir/'test_per_user.csv'),
                config=dict(model=model, train=train, optim=optim),
                machine=out['machine'])

def _median(xs:list) -> float: return sorted(xs)[len(xs) // 2]

def _replay_sequences(ds):
    "RePlay's tensor schema and training sequences: our internal ids minus 1 (0..n-1), file order."
    import pandas as pd
    from replay.data import FeatureHint, FeatureType
    from replay.data.nn import PandasSequentialDataset, TensorFeatureInfo, TensorSchema
    schema = TensorSchema([TensorFeatureInfo('item_id', FeatureType.CATEGORICAL, is_seq=True,
                                             feature_hint=FeatureHint.ITEM_ID,
                                             cardinality=ds.n_items, padding_value=ds.n_items)])
    seqs = pd.DataFrame({'user_id': range(ds.n_users),
                         'item_id': [s - 1 for s in ds.train_seqs()]})
    return schema, PandasSequentialDataset(schema, 'user_id', 'item_id', seqs)

def replay_scores(module, histories:list, max_len:int, n_items:int):
    "(B, n_items + 1) scores of RePlay's model after each history (our ids; column 0 padding)."
    import torch
    from recworkbench.data import left_pad
    items = left_pad(histories, max_len)                                    # (B, L), 0 = padding
    mask = items > 0
    net = module._model
    was = net.training
    net.eval()
    with torch.no_grad():
        s = net.predict({'item_id': (items - 1).clamp(min=0)}, mask)        # (B, n_items)
    net.train(was)
    return torch.cat([torch.full((len(histories), 1), float('-inf')), s.float()], 1)

def _stopper(ds, max_len:int, patience:int):
    "A lightning callback: validation NDCG@10 after every epoch, our patience rule, best weights."
    import copy, time, lightning
    class NDCGStop(lightning.Callback):
        def __init__(self):
            self.best, self.best_epoch, self.bad, self.epochs = float('-inf'), 0, 0, 0
            self.history = []
        def on_train_epoch_end(self, trainer, module):
            t = time.perf_counter()
            scores = replay_scores(module, ds.histories('valid'), max_len, ds.n_items)
            value = float(_per_user(scores, ds, 'valid')['NDCG@10'].mean())
            self.epochs += 1
            if value > self.best:
                self.best, self.best_epoch, self.bad = value, self.epochs, 0
                self.weights = copy.deepcopy(module._model.state_dict())
            else: self.bad += 1
            self.history.append(dict(epoch=self.epochs, valid_ndcg10=value,
                                     eval_seconds=time.perf_counter() - t))
            if self.bad >= patience: trainer.should_stop = True
    return NDCGStop()

class _EpochClock:
    "Seconds of each training epoch (without the validation that follows it)."
    def __new__(cls):
        import time, lightning
        class Clock(lightning.Callback):
            def __init__(self): self.seconds = []
            def on_train_epoch_start(self, *_): self.t = time.perf_counter()
            def on_train_epoch_end(self, *_): self.seconds.append(time.perf_counter() - self.t)
        return Clock()

def replay_child(a) -> dict:
    "Train RePlay's SasRec to early stop; score OUR test split; per-user metrics saved."
    torch = _threads(a.threads)
    import warnings; warnings.filterwarnings('ignore')
    import lightning
    from replay.models.nn.optimizer_utils import FatOptimizerFactory
    from replay.models.nn.sequential.sasrec import SasRec, SasRecTrainingDataset
    from recworkbench.data import load_dataset
    ds = load_dataset('ml-100k', root='data', verbose=False, download=True)
    lightning.seed_everything(a.seed, verbose=False)
    t0 = time.perf_counter()
    schema, seqs = _replay_sequences(ds)
    train_set = SasRecTrainingDataset(seqs, SHARED['max_len'],
                                      sliding_window_step=SHARED['max_len'])
    loader = torch.utils.data.DataLoader(train_set, batch_size=a.peer_batch, shuffle=True)
    module = SasRec(schema, block_count=SHARED['n_layers'], head_count=SHARED['n_heads'],
                    hidden_size=SHARED['d_model'], max_seq_len=SHARED['max_len'],
                    dropout_rate=SHARED['dropout'], loss_type='CE',
                    optimizer_factory=FatOptimizerFactory(learning_rate=a.peer_lr,
                                                          betas=(0.9, 0.999)))
    stop, clock = _stopper(ds, SHARED['max_len'], a.patience), _EpochClock()
    trainer = lightning.Trainer(accelerator='cpu', devices=1, max_epochs=200, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[clock, stop])
    trainer.fit(module, loader)
    seconds = time.perf_counter() - t0
    module._model.load_state_dict(stop.weights)
    scores = replay_scores(module, ds.histories('test'), SHARED['max_len'], ds.n_items)
    per_user = _per_user(scores, ds, 'test')
    run_dir = Path(a.runs)/f'replay-seed{a.seed}'; run_dir.mkdir(parents=True, exist_ok=True)
    per_user.to_csv(run_dir/'test_per_user.csv', index=False)
    (run_dir/'log.json').write_text(json.dumps(stop.history, indent=1))
    return dict(arm='replay', seed=a.seed, seconds=seconds, epochs_run=stop.epochs,
                best_epoch=stop.best_epoch, epoch_seconds=_median(clock.seconds),
                eval_seconds=_median([r['eval_seconds'] for r in stop.history]),
                valid_ndcg10=stop.best, test_ndcg10=float(per_user['NDCG@10'].mean()),
                test_hr10=float(per_user['HR@10'].mean()),
                params=sum(p.numel() for p in module._model.parameters()), windows=len(train_set),
                per_user=str(run_dir/'test_per_user.csv'),
                config=dict(lr=a.peer_lr, batch_size=a.peer_batch, betas=[0.9, 0.999]))

# ------------------------------------------------------------ parent: interleave, compare, report

def run_child(arm:str, seed:int, a) -> dict:
    "One arm, one seed in a fresh single-threaded process; its JSON summary line."
    python = sys.executable if arm == 'ours' else a.peer_python
    cmd = [python, __file__, '--child', arm, '--seed', str(seed), '--threads', str(a.threads),
           '--runs', a.runs, '--patience', str(a.patience), '--ours', a.ours,
           '--peer-lr', str(a.peer_lr), '--peer-batch', str(a.peer_batch)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0: sys.exit(f"{arm} seed {seed} failed:\n{res.stderr[-3000:]}")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    row['process_seconds'] = time.perf_counter() - t
    return row

def paired(rows:list, seeds:list) -> list:
    "Per seed and over seed-averaged users: paired bootstrap of test NDCG@10, ours - RePlay."
    import numpy as np, pandas as pd
    from recworkbench.metrics import paired_bootstrap
    def get(arm, s):                                                  # (n_users,) test NDCG@10
        path = next(r['per_user'] for r in rows if r['arm'] == arm and r['seed'] == s)
        return pd.read_csv(path)['NDCG@10'].to_numpy()
    out = []
    for s in seeds:
        diff = paired_bootstrap(get('replay', s), get('ours', s), n_boot=2000, seed=s)
        out.append(dict(seed=s, **diff))
    mean = lambda arm: np.mean([get(arm, s) for s in seeds], 0)      # each user's mean over seeds
    out.append(dict(seed='mean', **paired_bootstrap(mean('replay'), mean('ours'), n_boot=2000)))
    return out

def speed(rows:list, seeds:list) -> dict:
    "RePlay / ours time to early stop per seed, their mean, and the ratio of mean times."
    t = {(r['arm'], r['seed']): r['seconds'] for r in rows}
    per = [t['replay', s] / t['ours', s] for s in seeds]
    mean = lambda arm: sum(t[arm, s] for s in seeds) / len(seeds)
    return dict(per_seed=per, mean_of_ratios=sum(per) / len(per),
                ratio_of_means=mean('replay') / mean('ours'), ours_mean=mean('ours'),
                replay_mean=mean('replay'))

def plot(df, out:Path, title:str):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.2))
    for i, (col, lab) in enumerate([('seconds', 'seconds to early stop'),
                                    ('epoch_seconds', 'seconds / epoch (median)'),
                                    ('test_ndcg10', 'test NDCG@10')]):
        piv = df.pivot(index='seed', columns='arm', values=col)
        piv.plot.bar(ax=ax[i], rot=0); ax[i].set(ylabel=lab)
    fig.suptitle(title); fig.tight_layout(); fig.savefig(out/'bench.png', dpi=120)

def readme(a, rows, pairs, sp, machine) -> str:
    "The report's README: command, setup, per-seed table, speed-up and paired CI."
    lines = ['# SASRec vs RePlay 0.22 SasRec on ML-100K (CPU, 1 thread, to early stop)', '',
             f"Machine: {machine}. Command:", '', f"    {a.command}", '',
             'Same split, same 2,412 training windows, d=64, 2 blocks, 2 heads, dropout 0.2,',
             'max_len 50, full-softmax CE, Adam betas (0.9, 0.999), early stop on validation',
             f'NDCG@10 (patience {a.patience}), best weights; both scored by our metrics code on',
             'our test split.',
             f"Our overrides: `{a.ours}`; RePlay: lr {a.peer_lr}, batch {a.peer_batch}.", '',
             '| arm | seed | s to early stop | epochs (best) | s/epoch | test NDCG@10 | HR@10 |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['arm']} | {r['seed']} | {r['seconds']:.1f} | {r['epochs_run']} "
                     f"({r['best_epoch']}) | {r['epoch_seconds']:.2f} | {r['test_ndcg10']:.4f} "
                     f"| {r['test_hr10']:.4f} |")
    lines += ['', 'Speed-up (RePlay seconds / ours): per seed '
              + ', '.join(f'{x:.2f}x' for x in sp['per_seed'])
              + f"; ratio of mean times {sp['ratio_of_means']:.2f}x "
              f"({sp['replay_mean']:.1f} s vs {sp['ours_mean']:.1f} s).", '',
              'Paired per-user bootstrap of test NDCG@10, ours - RePlay (95% CI):', '']
    lines += [f"- seed {p['seed']}: {p['diff']:+.4f} [{p['lo']:+.4f}, {p['hi']:+.4f}], "
              f"p={p['p']:.2f}" for p in pairs]
    return '\n'.join(lines) + '\n'

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--patience', type=int, default=10)       # validations without improvement
    ap.add_argument('--ours', default='{}')                   # JSON overrides: model/train/optim
    ap.add_argument('--peer-lr', type=float, default=1e-3)
    ap.add_argument('--peer-batch', type=int, default=128)
    ap.add_argument('--peer-python', default=PEER_PYTHON)
    ap.add_argument('--arms', nargs='+', default=['ours', 'replay'])
    ap.add_argument('--runs', default='outputs/sasrec_peers')
    ap.add_argument('--out', default='reports/sasrec_peers')
    ap.add_argument('--child', choices=['ours', 'replay'], help=argparse.SUPPRESS)
    ap.add_argument('--seed', type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps((ours_child if a.child == 'ours' else replay_child)(a))); return
    a.command = 'python ' + ' '.join(sys.argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in a.seeds:
        for arm in a.arms:
            rows.append(run_child(arm, seed, a)); r = rows[-1]
            print(f"{arm:6s} seed {seed}: {r['seconds']:.1f}s to early stop, "
                  f"{r['epochs_run']} epochs (best {r['best_epoch']}), "
                  f"{r['epoch_seconds']:.2f}s/epoch, "
                  f"test NDCG@10 {r['test_ndcg10']:.4f}", flush=True)
            (out/'bench.json').write_text(json.dumps(dict(rows=rows), indent=1))  # partial
    report(a, rows, out)

def report(a, rows:list, out:Path):
    "Speed-up, paired CIs, csv/json/png/README from the finished rows."
    import pandas as pd
    machine = next(r['machine'] for r in rows if 'machine' in r)
    both = {'ours', 'replay'}
    seeds = [s for s in a.seeds if {r['arm'] for r in rows if r['seed'] == s} == both]
    pairs, sp = (paired(rows, seeds), speed(rows, seeds)) if seeds else ([], {})
    facts = dict(command=a.command, rows=rows, paired=pairs, speed=sp)
    (out/'bench.json').write_text(json.dumps(facts, indent=1))
    df = pd.DataFrame(rows).drop(columns=['machine', 'config'], errors='ignore')
    df.to_csv(out/'bench.csv', index=False)
    pd.DataFrame(pairs).to_csv(out/'paired.csv', index=False)
    m = f"{machine.get('device')} ({machine.get('cpus')} CPUs), torch {machine.get('torch')}"
    plot(df, out, f"SASRec vs RePlay SasRec, ML-100K, {m}, {a.threads} thread")
    if seeds: (out/'README.md').write_text(readme(a, rows, pairs, sp, m))
    for p in pairs: print(f"paired NDCG@10 ours - RePlay, seed {p['seed']}: {p['diff']:+.4f} "
                          f"[{p['lo']:+.4f}, {p['hi']:+.4f}]")
    if sp: print(f"speed-up: {sp['ratio_of_means']:.2f}x "
                 f"(per seed {[round(x, 2) for x in sp['per_seed']]})")

if __name__ == '__main__': main()
