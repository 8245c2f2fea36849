"""Speed of the state-space mixers of `recworkbench.ssm`: Mamba, Mamba2 and Hydra.

For each mixer and sequence length: forward+backward ("train") and forward-only ("infer", under
`torch.inference_mode`) time in milliseconds for
  - eager:     pure PyTorch, chunked scans (backend='torch');
  - compile:   the same module under `torch.compile` (a failure is caught and reported, the run goes on);
  - mamba_ssm: the mamba-ssm kernels (only on CUDA, and only where mamba-ssm imports).
Then the chunked scans against their sequential references (`selective_scan` vs `selective_scan_ref`, `ssd_chunked`
vs `ssd_ref`) at one length on the CPU, timed in turn within each repetition, and their speed ratio.

Writes results.csv, results.json and mixers.png into --out and prints a table.

    python benchmarks/bench_mixers.py --device cuda                     # the full grid on a GPU
    python benchmarks/bench_mixers.py --device cpu --threads 1 --batch 16 --lengths 50 200 --reps 3 --warmup 1 \
        --out reports/bench_mixers_cpu                                   # the CPU report
"""
from __future__ import annotations
import argparse, json, math, platform, statistics, sys, time, traceback
from pathlib import Path

import torch

try:
    from recworkbench import ssm
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from recworkbench import ssm
from recworkbench.core import pick_device, save_json
from recworkbench.models import MIXERS

SSM_NAMES = [name for name in MIXERS if name != 'attention']   # the state-space mixers


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    p.add_argument('--batch', type=int, default=256, help='batch size of the mixer timings')
    p.add_argument('--lengths', type=int, nargs='+', default=[50, 200, 1000], help='sequence lengths')
    p.add_argument('--d-model', type=int, default=64, help='model width')
    p.add_argument('--mixers', nargs='+', default=['mamba', 'mamba2', 'hydra'], choices=SSM_NAMES)
    p.add_argument('--modes', nargs='+', default=['eager', 'compile', 'mamba_ssm'], choices=['eager', 'compile', 'mamba_ssm'])
    p.add_argument('--reps', type=int, default=10, help='timed repetitions (the median is reported)')
    p.add_argument('--warmup', type=int, default=2, help='untimed repetitions first (compilation happens here)')
    p.add_argument('--dtype', default='float32', choices=['float32', 'float64', 'bfloat16'])
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch decides)')
    p.add_argument('--scan-batch', type=int, nargs='+', default=[1, 4, 16], help='batch sizes of the scan-vs-reference comparison (CPU)')
    p.add_argument('--ssd-chunk', type=int, default=64, help="ssd_chunked's chunk_size in the scan comparison (the mixers' default)")
    p.add_argument('--scan-length', type=int, default=200, help='sequence length of the scan-vs-reference comparison')
    p.add_argument('--scan-reps', type=int, default=7, help='timed repetitions of the scan comparison (the median is reported)')
    p.add_argument('--no-scan', action='store_true', help='skip the scan-vs-reference comparison')
    p.add_argument('--no-mixers', action='store_true', help='only the scan-vs-reference comparison')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default='outputs/bench_mixers', help='output folder')
    return p.parse_args(argv)


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


def time_ms(fn, device, reps, warmup):
    "Median wall time of `fn()` in milliseconds."
    for _ in range(warmup): fn()
    ts = []
    for _ in range(reps):
        sync(device); t0 = time.perf_counter(); fn(); sync(device)
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def left_padded_mask(batch, length, device, gen):
    "Random history lengths in [1, L], left padded (True on real items)."
    lens = torch.randint(1, length + 1, (batch,), generator=gen)
    return (torch.arange(length)[None] >= (length - lens)[:, None]).to(device)


def bench_mixer(name, mode, L, args, device, dtype):
    "One (mixer, mode, length) cell: a dict with train/infer milliseconds, or an error status."
    row = dict(mixer=name, mode=mode, length=L, batch=args.batch, d_model=args.d_model, train_ms=None, infer_ms=None,
               compile_s=None, status='ok')
    if mode == 'mamba_ssm' and not (device.type == 'cuda' and ssm.mamba_ssm_available()):
        row['status'] = 'skipped: needs CUDA and mamba-ssm'; return row
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    backend = 'mamba_ssm' if mode == 'mamba_ssm' else 'torch'
    mod = MIXERS[name](args.d_model, backend=backend).to(device=device, dtype=dtype)
    x = torch.randn(args.batch, L, args.d_model, generator=gen).to(device=device, dtype=dtype)
    mask = left_padded_mask(args.batch, L, device, gen)
    fn = mod
    try:
        if mode == 'compile':
            fn = torch.compile(mod)
            t0 = time.perf_counter()
            xx = x.clone().requires_grad_(); fn(xx, mask).float().square().mean().backward()
            with torch.inference_mode(): fn(x, mask)
            sync(device); row['compile_s'] = time.perf_counter() - t0

        def train():
            mod.zero_grad(set_to_none=True)
            xx = x.clone().requires_grad_()
            fn(xx, mask).float().square().mean().backward()

        def infer():
            with torch.inference_mode(): fn(x, mask)

        row['train_ms'] = time_ms(train, device, args.reps, args.warmup)
        row['infer_ms'] = time_ms(infer, device, args.reps, args.warmup)
    except torch.cuda.OutOfMemoryError:
        row['status'] = 'out of memory'
    except Exception as err:  # a compile failure must not stop the benchmark
        row['status'] = f'error: {type(err).__name__}: {str(err).splitlines()[0][:200]}'
        traceback.print_exc(limit=2)
    finally:
        del mod, fn
        if device.type == 'cuda': torch.cuda.empty_cache()
    return row


def time_interleaved(fns, reps, warmup=1):
    "Median wall time in ms of each of `fns` (a dict), the candidates run in turn within every repetition."
    for _ in range(warmup):
        for fn in fns.values(): fn()
    ts = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter(); fn(); ts[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in ts.items()}


def bench_scans(args, dtype):
    """Chunked scans vs their sequential references on the CPU, with the mixers' default shapes. The chunked scan and
    its reference are timed in turn within each repetition, so both see the same machine load."""
    g = torch.Generator().manual_seed(args.seed)
    L, di = args.scan_length, 2 * args.d_model
    r = lambda *s: torch.randn(*s, generator=g).to(dtype)
    rows = []
    for b in args.scan_batch:
        n1 = 32                                       # MambaMixer's d_state
        sel = dict(u=r(b, di, L), delta=r(b, di, L) - 2, A=-torch.arange(1, n1 + 1, dtype=dtype).repeat(di, 1),
                   B=r(b, n1, L), C=r(b, n1, L), D=torch.ones(di, dtype=dtype), z=r(b, di, L),
                   delta_bias=torch.zeros(di, dtype=dtype))
        h, p, n2 = di // 16, 16, 64                   # Mamba2Mixer's headdim and d_state
        ssd_in = dict(x=r(b, L, h, p), dt=r(b, L, h), A=-torch.rand(h, generator=g).to(dtype) - 0.5,
                      B=r(b, L, 1, n2), C=r(b, L, 1, n2), D=torch.ones(h, dtype=dtype))
        for op, inp, kw in (('selective_scan', sel, {}), ('ssd', ssd_in, dict(chunk_size=args.ssd_chunk, dt_softplus=True))):
            fn = ssm.selective_scan if op == 'selective_scan' else ssm.ssd_chunked
            def train(be):
                leaves = {k: v.clone().requires_grad_() for k, v in inp.items()}
                y = fn(**leaves, **kw, backend=be); y.backward(torch.ones_like(y))
            def infer(be):
                with torch.inference_mode(): fn(**inp, **kw, backend=be)
            tr = time_interleaved({be: (lambda be=be: train(be)) for be in ('torch', 'ref')}, args.scan_reps)
            inf = time_interleaved({be: (lambda be=be: infer(be)) for be in ('torch', 'ref')}, args.scan_reps)
            rows.append(dict(op=op, batch=b, length=L, d_inner=di,
                             chunked_train_ms=tr['torch'], ref_train_ms=tr['ref'], train_speedup=tr['ref'] / tr['torch'],
                             chunked_infer_ms=inf['torch'], ref_infer_ms=inf['ref'], infer_speedup=inf['ref'] / inf['torch']))
            print(f"  {op:14s} B={b:3d} L={L}: chunked train {tr['torch']:.1f} ms vs ref {tr['ref']:.1f} ms "
                  f"({tr['ref'] / tr['torch']:.1f}x), infer {inf['torch']:.1f} vs {inf['ref']:.1f} ms "
                  f"({inf['ref'] / inf['torch']:.1f}x)", flush=True)
    return rows


def fmt(v, digits=2):
    return '-' if v is None else (f'{v:.{digits}f}' if isinstance(v, float) else str(v))


def print_table(rows, cols):
    widths = [max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in cols]
    print('  '.join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows: print('  '.join(fmt(r.get(c)).rjust(w) for c, w in zip(cols, widths)))


def plot(rows, scan_rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    mixers = sorted({r['mixer'] for r in rows}, key=lambda m: SSM_NAMES.index(m))
    ncol = max(1, len(mixers) + (1 if scan_rows else 0))
    fig, axes = plt.subplots(1, ncol, figsize=(4.2 * ncol, 3.6), squeeze=False)
    for ax, m in zip(axes[0], mixers):
        for mode in ('eager', 'compile', 'mamba_ssm'):
            for kind, style in (('train_ms', '-o'), ('infer_ms', '--s')):
                pts = sorted((r['length'], r[kind]) for r in rows if r['mixer'] == m and r['mode'] == mode and r[kind])
                if pts: ax.plot(*zip(*pts), style, label=f"{mode} {kind.split('_')[0]}")
        ax.set(title=m, xlabel='sequence length', ylabel='ms', xscale='log', yscale='log')
        ax.grid(alpha=.3); ax.legend(fontsize=7)
    if scan_rows:
        ax = axes[0][-1]; xs = range(len(scan_rows))
        ax.bar([x - .2 for x in xs], [r['train_speedup'] for r in scan_rows], .4, label='fwd+bwd')
        ax.bar([x + .2 for x in xs], [r['infer_speedup'] for r in scan_rows], .4, label='fwd')
        ax.axhline(1, color='k', lw=.8)
        ax.set_xticks(list(xs)); ax.set_xticklabels([f"{r['op'].replace('selective_', 'sel_')}\nB={r['batch']}" for r in scan_rows], fontsize=7)
        ax.set(title=f"chunked vs sequential ref (CPU, L={scan_rows[0]['length']})", ylabel='speed-up (x)', yscale='log')
        ax.title.set_fontsize(8); ax.legend(fontsize=7)
    fig.tight_layout(); fig.savefig(path, dpi=120); plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    device = pick_device(args.device); dtype = getattr(torch, args.dtype)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    meta = dict(args=vars(args), device=str(device), torch=torch.__version__, threads=torch.get_num_threads(),
                cpu=platform.processor() or platform.machine(), mamba_ssm=ssm.mamba_ssm_available() if device.type == 'cuda' else False,
                gpu=torch.cuda.get_device_name(device) if device.type == 'cuda' else None)
    print(f"device {device} ({meta['gpu'] or meta['cpu']}), torch {torch.__version__}, {meta['threads']} threads, dtype {args.dtype}")
    rows = []
    for name in ([] if args.no_mixers else args.mixers):
        for L in args.lengths:
            for mode in args.modes:
                row = bench_mixer(name, mode, L, args, device, dtype)
                rows.append(row)
                print(f"  {name:7s} L={L:5d} {mode:9s} train {fmt(row['train_ms']):>9s} ms  infer {fmt(row['infer_ms']):>9s} ms  {row['status']}", flush=True)
    scan_rows = [] if args.no_scan else bench_scans(args, torch.float32)
    import csv
    cols = ['mixer', 'mode', 'length', 'batch', 'd_model', 'train_ms', 'infer_ms', 'compile_s', 'status']
    with open(out / 'results.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=cols); w.writeheader(); w.writerows(rows)
    save_json(dict(meta=meta, mixers=rows, scans=scan_rows), out / 'results.json')
    plot(rows, scan_rows, out / 'mixers.png')
    if rows:
        print(f"\nMixers (batch {args.batch}, d_model {args.d_model}, {args.dtype}, median of {args.reps}):")
        print_table(rows, cols[:3] + ['train_ms', 'infer_ms', 'compile_s', 'status'])
    if scan_rows:
        print(f"\nChunked scan vs sequential reference (CPU, float32, L={args.scan_length}, median of {args.scan_reps}):")
        print_table(scan_rows, ['op', 'batch', 'chunked_train_ms', 'ref_train_ms', 'train_speedup', 'chunked_infer_ms', 'ref_infer_ms', 'infer_speedup'])
    print(f"\nwrote {out/'results.csv'}, {out/'results.json'}, {out/'mixers.png'}")
    return rows, scan_rows


if __name__ == '__main__':
    main()
