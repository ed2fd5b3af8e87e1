"""ciprop, chisq and contrast give the same digits with one thread or two: the core adds
its chunk sums in a fixed order (600,000 rows: several chunks of every pass)."""

from __future__ import annotations

from _threads import outputs_by_threads

CODE = """
import numpy as np, pandas as pd, sscoverage as ssc
rng = np.random.default_rng(1); n = 600_000
df = pd.DataFrame({'s': rng.integers(0, 20, n), 'd': rng.integers(0, 5, n), 'a': rng.integers(0, 3, n)})
df['p'] = df.s * 100 + rng.integers(0, 30, n)
# Weights constant within a PSU for half the PSUs, row by row for the others.
df['w'] = np.where(df.p % 2 == 0, 1 + (df.p % 7), rng.uniform(1, 3, n))
df['y'] = (rng.uniform(size=n) < 0.2 + 0.1 * df.d).astype(float)
design = ssc.Design(df, ids='p', strata='s', weights='w')
out = []
for method in ('logit', 'likelihood', 'beta'):
    t = design.ciprop('y', method, by='d').table
    out += t[['estimate', 'se', 'ci_low', 'ci_high']].to_numpy().ravel().tolist()
for statistic in ('F', 'Wald', 'saddlepoint'):
    r = design.chisq('a', 'd', statistic)
    out += [r.statistic, r.p_value]
r = design.contrast('y', [1, -1, 0, 0, 0], by='d')
out += [float(r.estimate[0]), float(r.se[0])]
jk = ssc.Design(df.assign(p=df.p % 40), ids='p', weights='w').as_replicates('JK1')
out += jk.ciprop('y', 'logit', by='d').table[['estimate', 'ci_low', 'ci_high']].to_numpy().ravel().tolist()
print([float(v).hex() for v in out])
"""


def test_ciprop_chisq_contrast_are_the_same_whatever_the_thread_count():
    outs = outputs_by_threads(CODE)
    assert outs[0] == outs[1]
    assert len(eval(outs[0])) == 3 * 5 * 4 + 3 * 2 + 2 + 5 * 3
