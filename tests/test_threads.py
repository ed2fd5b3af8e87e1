"""The estimators the other thread tests leave out give the same digits with one thread
or two: Cox regression, raking, calibration and the threshold model's score bootstrap
(200,000 rows: several chunks of every parallel pass)."""

from __future__ import annotations

from _threads import outputs_by_threads

CODE = """
import numpy as np, pandas as pd, sscoverage as ssc
rng = np.random.default_rng(3); n = 200_000
df = pd.DataFrame({'s': rng.integers(0, 10, n), 'a': rng.integers(0, 3, n), 'b': rng.integers(0, 4, n)})
df['p'] = df.s * 50 + rng.integers(0, 25, n)
df['w'] = 1 + (df.p % 7) + rng.uniform(0, 1, n)
df['x'] = rng.normal(size=n)
df['income'] = rng.lognormal(8, 0.5, n)
df['time'] = np.ceil(rng.exponential(20.0 * np.exp(-0.3 * df.x), n)).clip(1, 60)
df['event'] = (rng.random(n) < 0.7).astype(float)
df['y'] = (rng.random(n) < 1 / (1 + np.exp(-(df.x + (df.income > 3000))))).astype(float)
d = ssc.Design(df, ids='p', strata='s', weights='w')
out = []
cox = d.coxph('Surv(time, event) ~ x + C(a)')
out += list(cox.coef) + list(np.ravel(cox.vcov))
total = float(df.w.sum())
raked = d.rake({'a': {k: total / 3 for k in range(3)}, 'b': {k: total / 4 for k in range(4)}})
out += list(raked.weights[:1000]) + list(raked.mean('x', by='a').se)
cal = d.calibrate('~ x', {'(Intercept)': total, 'x': 0.0})
out += list(cal.weights[:1000]) + list(cal.mean('y').se)
thr = d.threshold_glm('y ~ x', 'income', kind='level', grid=8, n_draws=49)
out += [thr.threshold, thr.p_value]
print([float(v).hex() for v in out])
"""


def test_cox_rake_calibrate_threshold_are_the_same_whatever_the_thread_count():
    outs = outputs_by_threads(CODE)
    assert outs[0] == outs[1]
    assert len(eval(outs[0])) > 2000
