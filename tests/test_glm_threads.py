"""A GLM gives the same digits with one thread or two: the core's passes over the rows
use a fixed partition (chunks of 16,384 rows) and add their sums in chunk order
(100,000 rows: several chunks, the last one partial)."""

from __future__ import annotations

from _threads import outputs_by_threads

CODE = """
import numpy as np, pandas as pd, sscoverage as ssc
rng = np.random.default_rng(3); n = 100_000
df = pd.DataFrame({'s': rng.integers(0, 10, n), 'd': rng.integers(0, 4, n), 'x': rng.normal(size=n)})
df['p'] = df.s * 50 + rng.integers(0, 20, n)
df['w'] = rng.uniform(1, 3, n)
df['y'] = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.3 * df.x - 0.2 * df.d)))).astype(float)
df['k'] = rng.poisson(np.exp(0.5 + 0.2 * df.x))
design = ssc.Design(df, ids='p', strata='s', weights='w')
out = []
for formula, family in (('y ~ x + C(d)', 'quasibinomial'), ('k ~ x * C(d)', 'poisson')):
    f = design.glm(formula, family=family)
    out += [*f.coef, *f.se, f.dispersion, f.deviance, float(f.iterations)]
print([float(v).hex() for v in out])
"""


def test_glm_is_the_same_whatever_the_thread_count():
    outs = outputs_by_threads(CODE)
    assert outs[0] == outs[1]
    assert len(eval(outs[0])) == 2 * 5 + 3 + 2 * 8 + 3  # 5 and 8 coefficients
