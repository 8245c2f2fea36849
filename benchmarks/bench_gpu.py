"""GPU scale benchmark: SSM mixers, exact chunked cross-entropy at 10^6 items, chunked top-K ranking.

Sections, each timed side by side against its naive or kernel counterpart in the same run:
  gemm    a large matrix multiply in float32 and bfloat16: the achieved peak, next to the nominal one;
  mixers  Mamba / Mamba2 / Hydra at (B 256, L in {50, 200, 1000}, d 64): eager PyTorch, `torch.compile`d
          and mamba-ssm's kernels (when importable), forward+backward ("train") and forward ("infer"),
          milliseconds per call, with the ratios compile/eager and compile/mamba_ssm;
  ce      one training step of the item-softmax loss (forward + backward w.r.t. hidden states and item
          table) at N = B 256 x L 200 positions over V = 10^6 items, d 64: `ops.chunked_cross_entropy`
          against the naive full-logits form (its out-of-memory failure is caught and recorded), and
          against the GEMM bound: 3 GEMMs of 2 N V d flops at the device's peak;
  topk    top-20 for 4,096 users over 10^6 items: `ops.chunked_topk` against `queries @ items.T` +
          `torch.topk`, with the bound = score GEMM flops / peak + reading the item table once / bandwidth.

Nominal H200 peaks used for the bounds (dense, no sparsity): bf16 990 TFLOP/s, fp32 67 TFLOP/s, HBM 4.8 TB/s
(`--peak-bf16`, `--peak-fp32`, `--bandwidth` override them); the measured GEMM peak is reported as well, and
bounds are given for both. Writes results.json, results.csv and bench_gpu.png into --out, naming the device.

    python benchmarks/bench_gpu.py --device cuda --out $OUT/bench_gpu            # the full sizes (GPU)
    python benchmarks/bench_gpu.py --device cpu --quick --out reports/bench_gpu_cpu_quick
"""
from __future__ import annotations
import argparse, csv, importlib.util, platform, statistics, sys, time, traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
try:
    from recworkbench import ops, ssm
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
    from recworkbench import ops, ssm
from recworkbench.core import pick_device, save_json

_spec = importlib.util.spec_from_file_location('bench_mixers', Path(__file__).with_name('bench_mixers.py'))
bench_mixers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_mixers)

FULL = dict(batch=256, lengths=[50, 200, 1000], ce_rows=256 * 200, ce_items=10**6, topk_users=4096,
            topk_items=10**6, gemm=8192, reps=10, warmup=3)
QUICK = dict(batch=8, lengths=[50], ce_rows=1024, ce_items=20_000, topk_users=256, topk_items=50_000,
             gemm=1024, reps=3, warmup=1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    p.add_argument('--quick', action='store_true', help='small sizes (a CPU smoke run)')
    p.add_argument('--out', default='outputs/bench_gpu', help='output folder')
    p.add_argument('--sections', nargs='+', default=['gemm', 'mixers', 'ce', 'topk'],
                   choices=['gemm', 'mixers', 'ce', 'topk'])
    p.add_argument('--mixers', nargs='+', default=bench_mixers.SSM_NAMES, choices=bench_mixers.SSM_NAMES)
    p.add_argument('--modes', nargs='+', default=['eager', 'compile', 'mamba_ssm'],
                   choices=['eager', 'compile', 'mamba_ssm'])
    p.add_argument('--d-model', type=int, default=64, help='model / embedding width')
    p.add_argument('--ce-chunk', type=int, default=32768, help='items per chunk of the chunked CE')
    p.add_argument('--topk-chunk', type=int, default=65536, help='items per chunk of chunked_topk')
    p.add_argument('--k', type=int, default=20, help='top-K list length')
    p.add_argument('--loss-dtype', default=None, choices=['float32', 'bfloat16'],
                   help='dtype of the CE and top-K sections (default: bfloat16 on CUDA, float32 on CPU)')
    p.add_argument('--peak-bf16', type=float, default=990e12, help='nominal bf16 dense flop/s')
    p.add_argument('--peak-fp32', type=float, default=67e12, help='nominal fp32 flop/s')
    p.add_argument('--bandwidth', type=float, default=4.8e12, help='nominal memory bandwidth, bytes/s')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        setattr(args, key, value)
    return args


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_ms(fn, device, reps, warmup):
    "Median wall time of `fn()` in milliseconds (synchronised on CUDA)."
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def peak_memory_gb(device):
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else None


def reset_memory(device):
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def guarded(row, fn, device):
    "Run `fn()` into `row`; out-of-memory and other failures are recorded in row['status']."
    reset_memory(device)
    try:
        fn()
        row.setdefault('status', 'ok')
    except torch.OutOfMemoryError:
        row['status'] = 'out of memory'
    except Exception as err:  # one failing cell must not stop the benchmark
        row['status'] = f'error: {type(err).__name__}: {str(err).splitlines()[0][:200]}'
        traceback.print_exc(limit=3)
    row['peak_mem_gb'] = peak_memory_gb(device)
    reset_memory(device)
    return row


def bench_gemm(args, device):
    "Achieved flop/s of an (n x n) @ (n x n) GEMM per dtype, next to the nominal peak."
    rows = []
    for name, nominal in (('float32', args.peak_fp32), ('bfloat16', args.peak_bf16)):
        if device.type == 'cpu' and name == 'bfloat16':
            continue
        dtype = getattr(torch, name)
        row = dict(section='gemm', dtype=name, n=args.gemm, nominal_tflops=nominal / 1e12)
        def run():
            a = torch.randn(args.gemm, args.gemm, device=device, dtype=dtype)
            b = torch.randn(args.gemm, args.gemm, device=device, dtype=dtype)
            ms = time_ms(lambda: a @ b, device, args.reps, args.warmup)
            row.update(ms=ms, achieved_tflops=2 * args.gemm**3 / (ms / 1e3) / 1e12)
        rows.append(guarded(row, run, device))
        print(f"  gemm {name:8s} n={args.gemm}: {fmt(row.get('achieved_tflops'))} TFLOP/s "
              f"(nominal {row['nominal_tflops']:.0f}) {row['status']}", flush=True)
    return rows


def bench_mixer_rows(args, device):
    "The mixer grid of bench_mixers.py at this benchmark's sizes, with ratios per (mixer, length)."
    margs = bench_mixers.parse_args(['--batch', str(args.batch), '--d-model', str(args.d_model),
                                     '--reps', str(args.reps), '--warmup', str(args.warmup)])
    rows = []
    lengths = sorted(args.lengths, key=lambda n: (n != 200, n))   # L 200 (the headline) first
    for length in lengths:
        for name in args.mixers:
            cell = {}
            for mode in args.modes:
                row = bench_mixers.bench_mixer(name, mode, length, margs, device, torch.float32)
                cell[mode] = row
                rows.append(dict(section='mixers', **row))
                print(f"  {name:7s} L={length:5d} {mode:9s} train {fmt(row['train_ms'])} ms  "
                      f"infer {fmt(row['infer_ms'])} ms  {row['status']}", flush=True)
            rows.append(dict(section='mixer_ratios', mixer=name, length=length, **mixer_ratios(cell)))
    return rows


def ratio(a, b):
    return None if a is None or b is None else a / b


def mixer_ratios(cell):
    "Speed-ups of one (mixer, length): eager/compile (>1: compile faster), mamba_ssm/compile (>=1: compile wins)."
    get = lambda mode, kind: cell.get(mode, {}).get(kind)
    out = {}
    for kind in ('train_ms', 'infer_ms'):
        stem = kind.split('_')[0]
        out[f'{stem}_eager_over_compile'] = ratio(get('eager', kind), get('compile', kind))
        out[f'{stem}_mamba_ssm_over_compile'] = ratio(get('mamba_ssm', kind), get('compile', kind))
        out[f'{stem}_eager_over_mamba_ssm'] = ratio(get('eager', kind), get('mamba_ssm', kind))
    return out


def loss_dtype(args, device):
    if args.loss_dtype:
        return getattr(torch, args.loss_dtype)
    return torch.bfloat16 if device.type == 'cuda' else torch.float32


def peak_for(args, dtype):
    return args.peak_bf16 if dtype == torch.bfloat16 else args.peak_fp32


def bench_ce(args, device, measured):
    "One training step of the item softmax: chunked vs naive, against the 3-GEMM bound."
    dtype, n, v, d = loss_dtype(args, device), args.ce_rows, args.ce_items + 1, args.d_model
    gen = torch.Generator(device=device).manual_seed(args.seed)
    hidden = torch.randn(n, d, device=device, dtype=dtype, generator=gen).requires_grad_()
    items = (torch.randn(v, d, device=device, dtype=dtype, generator=gen) * 0.1).requires_grad_()
    targets = torch.randint(1, v, (n,), device=device, generator=gen)
    flops = 3 * 2 * n * v * d
    rows = []
    impls = (('chunked', lambda: ops.chunked_cross_entropy(hidden, items, targets, chunk=args.ce_chunk)),
             ('naive', lambda: ops.chunked_cross_entropy_ref(hidden, items, targets)))
    for name, loss_fn in impls:
        row = dict(section='ce', impl=name, rows=n, items=v - 1, d=d, dtype=str(dtype).split('.')[-1],
                   chunk=args.ce_chunk if name == 'chunked' else None, gemm_flops=flops)
        def step():
            hidden.grad, items.grad = None, None
            loss_fn().backward()
        def run():
            row['ms'] = time_ms(step, device, max(2, args.reps // 2), 1)
        guarded(row, run, device)
        add_bounds(row, flops, 0, args, dtype, measured)
        rows.append(row)
        print(f"  ce {name:7s} N={n} V={v - 1} d={d} {row['dtype']}: {fmt(row.get('ms'))} ms "
              f"(bound {fmt(row['bound_nominal_ms'])} ms nominal) peak {fmt(row['peak_mem_gb'])} GB "
              f"{row['status']}", flush=True)
    return rows


def add_bounds(row, flops, bytes_read, args, dtype, measured):
    "Roofline-style lower bounds from the nominal and the measured peak, and the ratio time / bound."
    row['bound_nominal_ms'] = (flops / peak_for(args, dtype) + bytes_read / args.bandwidth) * 1e3
    achieved = measured.get(str(dtype).split('.')[-1])
    row['bound_measured_ms'] = None if not achieved else (flops / achieved + bytes_read / args.bandwidth) * 1e3
    row['over_nominal_bound'] = ratio(row.get('ms'), row['bound_nominal_ms'])
    row['over_measured_bound'] = ratio(row.get('ms'), row['bound_measured_ms'])


def naive_topk(queries, items, k):
    "The naive form: the full (B, V) score matrix, padding masked, then torch.topk."
    scores = queries @ items.T
    scores[:, 0] = float('-inf')
    return scores.topk(k, 1)


def bench_topk(args, device, measured):
    "Top-K over all items for many users: chunked vs naive, against the GEMM + table-read bound."
    dtype, b, v, d = loss_dtype(args, device), args.topk_users, args.topk_items + 1, args.d_model
    gen = torch.Generator(device=device).manual_seed(args.seed + 1)
    queries = torch.randn(b, d, device=device, dtype=dtype, generator=gen)
    items = torch.randn(v, d, device=device, dtype=dtype, generator=gen)
    flops, table_bytes = 2 * b * v * d, v * d * items.element_size()
    rows, ids = [], {}
    impls = (('chunked', lambda: ops.chunked_topk(queries, items, args.k, chunk=args.topk_chunk)),
             ('naive', lambda: naive_topk(queries, items, args.k)))
    for name, fn in impls:
        row = dict(section='topk', impl=name, users=b, items=v - 1, d=d, k=args.k,
                   dtype=str(dtype).split('.')[-1], chunk=args.topk_chunk if name == 'chunked' else None)
        def run():
            with torch.inference_mode():
                row['ms'] = time_ms(fn, device, args.reps, args.warmup)
                ids[name] = fn()[1]
        guarded(row, run, device)
        add_bounds(row, flops, table_bytes, args, dtype, measured)
        row['users_per_s'] = None if not row.get('ms') else b / (row['ms'] / 1e3)
        rows.append(row)
        print(f"  topk {name:7s} B={b} V={v - 1} k={args.k} {row['dtype']}: {fmt(row.get('ms'))} ms "
              f"(bound {fmt(row['bound_nominal_ms'], 3)} ms nominal) {row['status']}", flush=True)
    if len(ids) == 2:
        rows[0]['ids_equal_naive'] = bool(torch.equal(ids['chunked'], ids['naive']))
    return rows


def fmt(value, digits=2):
    if value is None:
        return '-'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = [('mixers', 'train_ms'), ('ce', 'ms'), ('topk', 'ms')]
    fig, axes = plt.subplots(1, len(groups), figsize=(13, 3.8))
    for ax, (section, key) in zip(axes, groups):
        sel = [r for r in rows if r['section'] == section and r.get(key)]
        labels = [label_of(r) for r in sel]
        ax.barh(range(len(sel)), [r[key] for r in sel])
        ax.set_yticks(range(len(sel)))
        ax.set_yticklabels(labels, fontsize=6)
        bounds = [r.get('bound_nominal_ms') for r in sel]
        if any(bounds):
            ax.scatter([b or 0 for b in bounds], range(len(sel)), color='k', marker='|', s=200,
                       label='nominal bound')
            ax.legend(fontsize=7)
        ax.set(title=section, xlabel='ms per call', xscale='log')
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def label_of(row):
    if row['section'] == 'mixers':
        return f"{row['mixer']} L{row['length']} {row['mode']}"
    return f"{row['impl']} {row.get('dtype', '')}"


def write_csv(rows, path):
    cols = sorted({k for r in rows for k in r}, key=lambda c: (c != 'section', c))
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)


def describe(device):
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else None
    return dict(device=str(device), device_name=name or platform.processor() or platform.machine(),
                torch=torch.__version__, cuda=torch.version.cuda, threads=torch.get_num_threads(),
                mamba_ssm=ssm.mamba_ssm_available() if device.type == 'cuda' else False)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(describe(device), args=vars(args))
    print(f"device {meta['device']} ({meta['device_name']}), torch {meta['torch']}, "
          f"mamba_ssm {meta['mamba_ssm']}, quick {args.quick}", flush=True)
    rows = []
    title = f"{meta['device_name']} ({meta['device']}), torch {meta['torch']}"
    def save():  # after every section: a run cut off by a time limit keeps what it finished
        save_json(dict(meta=meta, rows=rows), out / 'results.json')
        write_csv(rows, out / 'results.csv')
        plot(rows, out / 'bench_gpu.png', title)
    measured = {}
    for section in ('gemm', 'ce', 'topk', 'mixers'):  # the slow compiles of the mixers last
        if section not in args.sections:
            continue
        if section == 'gemm':
            rows += bench_gemm(args, device)
            measured = {r['dtype']: r['achieved_tflops'] * 1e12 for r in rows if r.get('achieved_tflops')}
        elif section == 'ce':
            rows += bench_ce(args, device, measured)
        elif section == 'topk':
            rows += bench_topk(args, device, measured)
        else:
            rows += bench_mixer_rows(args, device)
        save()
    print(f"wrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'bench_gpu.png'}")
    return rows


if __name__ == '__main__':
    main()
