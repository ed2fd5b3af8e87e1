//! Cox proportional-hazards regression with case weights, step for step as R's
//! `survival::coxph` (its C routine `coxfit6`: Newton–Raphson on the partial likelihood
//! with Efron's or Breslow's handling of tied event times), and the influence values of
//! the coefficients survey inference needs: each row's score residual (`coxscore2`)
//! times the inverse information, times its weight (R's `resid(fit, "dfbeta",
//! weighted = TRUE)`, what `svycoxph` hands to the design's variance).
//!
//! Following R's iterations, not only its fixed point, matters: R stops when the log
//! partial likelihood changes by less than `eps` relative, which leaves the coefficients
//! up to about 1e-8 from the exact maximum, and the reference figures are R's.

use rayon::prelude::*;

use super::linalg::Ldl;
use super::regressors::Regressors;
use crate::error::{CoreError, Result};
use crate::replicate::refit_replicates;

/// How tied event times enter the partial likelihood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ties {
    Breslow,
    /// R's default: the d tied events leave the risk set in d equal steps.
    Efron,
}

impl Ties {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "efron" => Ok(Ties::Efron),
            "breslow" => Ok(Ties::Breslow),
            other => Err(CoreError::Value(format!(
                "ties={other:?}: use 'efron' or 'breslow'"
            ))),
        }
    }
}

/// R's `coxph.control()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
    /// Stop when |1 - loglik_old / loglik_new| <= eps.
    pub eps: f64,
    /// Pivots of the information below this fraction of its largest diagonal are zero.
    pub toler_chol: f64,
    pub maxit: usize,
    /// A last Newton step larger than this (relative to the coefficient) flags a
    /// coefficient that may be infinite.
    pub toler_inf: f64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            eps: 1e-9,
            toler_chol: f64::EPSILON.powf(0.75),
            maxit: 20,
            toler_inf: 1e-9f64.sqrt(),
        }
    }
}

/// A model's covariates: a dense matrix, or columns of the model's matrix assembled as
/// each row is read (no n x p copy of them is made).
#[derive(Clone, Copy)]
pub enum Covariates<'a> {
    /// Row-major, p values per row.
    Dense(&'a [f64]),
    /// Columns `which` of `columns`; row i is the model's row `rows[first + i]` (None:
    /// `first + i`).
    Model {
        columns: &'a Regressors<'a>,
        which: &'a [usize],
        rows: Option<&'a [usize]>,
        first: usize,
    },
}

/// Rows of a model: the n x p covariates (no intercept), right-censored times with their
/// event indicators, and case weights.  All the rows of a fit, or one batch of a
/// streamed design's.
#[derive(Clone, Copy)]
pub struct CoxRows<'a> {
    pub x: Covariates<'a>,
    pub n: usize,
    pub p: usize,
    pub time: &'a [f64],
    pub event: &'a [bool],
    pub weights: &'a [f64],
}

/// A model to fit: its rows, the handling of ties and R's control settings.
#[derive(Clone, Copy)]
pub struct CoxInput<'a> {
    pub rows: CoxRows<'a>,
    pub ties: Ties,
    pub control: Control,
}

#[derive(Clone, Debug)]
pub struct CoxFit {
    pub coefficients: Vec<f64>,
    /// Inverse information at the coefficients, row-major p x p (R's `fit$var`, the
    /// model-based covariance).
    pub var: Vec<f64>,
    /// Log partial likelihood at the initial values and at the coefficients.
    pub loglik: [f64; 2],
    pub iterations: usize,
    pub converged: bool,
    /// Columns whose coefficient may be infinite: the likelihood converged while a
    /// Newton step would still move them (R's warning "Loglik converged before
    /// variable ...; coefficient may be infinite").
    pub infinite: Vec<usize>,
    /// What the rows' influence values are computed from.
    pub solution: Solution,
}

impl CoxRows<'_> {
    /// Lengths, finite times >= 0, finite weights >= 0 and finite covariates (a model's
    /// columns are checked finite as they are made).
    fn check(&self) -> Result<()> {
        let n = self.n;
        let covariates_fit = match self.x {
            Covariates::Dense(x) => x.len() == n * self.p,
            Covariates::Model {
                columns,
                which,
                rows,
                first,
            } => {
                which.len() == self.p
                    && which.iter().all(|&j| j < columns.p())
                    && match rows {
                        Some(rows) => {
                            first + n <= rows.len()
                                && rows[first..first + n].iter().all(|&r| r < columns.n())
                        }
                        None => first + n <= columns.n(),
                    }
            }
        };
        if self.p == 0
            || !covariates_fit
            || self.time.len() != n
            || self.event.len() != n
            || self.weights.len() != n
        {
            return Err(CoreError::Shape(format!(
                "covariates of {} columns, time {}, event {} and weights {} rows; expected {n} \
                 rows of the covariates (at least one column)",
                self.p,
                self.time.len(),
                self.event.len(),
                self.weights.len(),
            )));
        }
        if let Some(i) = self.time.iter().position(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(CoreError::Value(format!(
                "survival time {} at row {i} is not a finite number >= 0",
                self.time[i]
            )));
        }
        if let Some(i) = self
            .weights
            .iter()
            .position(|w| !(w.is_finite() && *w >= 0.0))
        {
            return Err(CoreError::Value(format!(
                "weight {} at row {i} is not a finite number >= 0",
                self.weights[i]
            )));
        }
        if let Covariates::Dense(x) = self.x {
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(CoreError::Value(format!(
                    "covariate {} at row {} is not finite",
                    x[i],
                    i / self.p
                )));
            }
        }
        Ok(())
    }

    /// Row i's covariates into `out` (p values).
    fn row(&self, i: usize, out: &mut [f64]) {
        match self.x {
            Covariates::Dense(x) => out.copy_from_slice(&x[i * self.p..(i + 1) * self.p]),
            Covariates::Model {
                columns,
                which,
                rows,
                first,
            } => {
                let r = rows.map_or(first + i, |rows| rows[first + i]);
                for (o, &j) in out.iter_mut().zip(which) {
                    *o = columns.value_at(j, r);
                }
            }
        }
    }

    /// Rows lo..hi (a chunk of a parallel pass).
    pub(crate) fn part(&self, lo: usize, hi: usize) -> Self {
        let x = match self.x {
            Covariates::Dense(x) => Covariates::Dense(&x[lo * self.p..hi * self.p]),
            Covariates::Model {
                columns,
                which,
                rows,
                first,
            } => Covariates::Model {
                columns,
                which,
                rows,
                first: first + lo,
            },
        };
        CoxRows {
            x,
            n: hi - lo,
            time: &self.time[lo..hi],
            event: &self.event[lo..hi],
            weights: &self.weights[lo..hi],
            ..*self
        }
    }
}

/// R's centring and scaling of the covariates before `coxfit6` iterates: a column of
/// only -1, 0 and 1 (a dummy) stays as it is; another is centred at its weighted mean
/// and multiplied by the total weight over its sum of w |x - mean|.  It changes the
/// rounding of the iterates, not their values.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    pub centre: Vec<f64>,
    pub scale: Vec<f64>,
}

/// What the scaling is set from, summed over the rows (batch by batch on a streamed
/// design): the total weight, each column's weighted sum, and which columns hold only
/// -1, 0 and 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    pub total: f64,
    pub sums: Vec<f64>,
    pub dummy: Vec<bool>,
}

impl Moments {
    pub fn of(rows: &CoxRows) -> Result<Moments> {
        rows.check()?;
        Ok(Moments::sum(rows))
    }

    /// The moments of rows checked already.
    fn sum(rows: &CoxRows) -> Moments {
        let p = rows.p;
        let mut m = Moments {
            total: 0.0,
            sums: vec![0.0; p],
            dummy: vec![true; p],
        };
        let mut x = vec![0.0; p];
        for (i, &w) in rows.weights.iter().enumerate() {
            m.total += w;
            rows.row(i, &mut x);
            for ((s, d), &v) in m.sums.iter_mut().zip(&mut m.dummy).zip(&x) {
                *s += w * v;
                *d &= matches!(v, -1.0 | 0.0 | 1.0);
            }
        }
        m
    }

    /// Another part of the rows' moments added (batches in batch order).
    pub fn add(&mut self, other: &Moments) -> Result<()> {
        if other.sums.len() != self.sums.len() || other.dummy.len() != self.dummy.len() {
            return Err(CoreError::Shape(format!(
                "moments of {} columns added to moments of {}",
                other.sums.len(),
                self.sums.len()
            )));
        }
        self.total += other.total;
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a += b;
        }
        for (a, b) in self.dummy.iter_mut().zip(&other.dummy) {
            *a &= b;
        }
        Ok(())
    }

    /// Each column's centre: its weighted mean, 0 for a dummy.
    pub fn centre(&self) -> Vec<f64> {
        self.sums
            .iter()
            .zip(&self.dummy)
            .map(|(s, &d)| if d { 0.0 } else { s / self.total })
            .collect()
    }
}

/// Each column's sum of w |x - centre| over the rows.
pub fn spread(rows: &CoxRows, centre: &[f64]) -> Result<Vec<f64>> {
    rows.check()?;
    if centre.len() != rows.p {
        return Err(CoreError::Shape(format!(
            "{} centres for {} columns",
            centre.len(),
            rows.p
        )));
    }
    Ok(spreads(rows, centre))
}

/// [`spread`] of rows checked already.
fn spreads(rows: &CoxRows, centre: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; rows.p];
    let mut x = vec![0.0; rows.p];
    for (i, &w) in rows.weights.iter().enumerate() {
        rows.row(i, &mut x);
        for ((s, v), c) in out.iter_mut().zip(&x).zip(centre) {
            *s += w * (v - c).abs();
        }
    }
    out
}

/// `v` with its significand cut to 24 bits.
fn short(v: f64) -> f64 {
    f64::from_bits(v.to_bits() & !((1u64 << 29) - 1))
}

impl Scaling {
    /// R's scaling, its constants cut to 24 significant bits: they set only the rounding
    /// of the iterates, and cut short they are the same bits whichever order the moments
    /// were summed in (all rows at once, or batch by batch), so the two give one fit.
    pub fn new(moments: &Moments, spread: &[f64]) -> Scaling {
        let scale = spread
            .iter()
            .zip(&moments.dummy)
            .map(|(&s, &d)| {
                if !d && s > 0.0 {
                    short(moments.total / s)
                } else {
                    1.0
                }
            })
            .collect();
        Scaling {
            centre: moments.centre().into_iter().map(short).collect(),
            scale,
        }
    }

    /// The scaling of all the rows of a fit (checked already).
    fn of(rows: &CoxRows) -> Scaling {
        let moments = Moments::sum(rows);
        Scaling::new(&moments, &spreads(rows, &moments.centre()))
    }

    /// A row of covariates, centred and scaled, into `out`.
    fn apply(&self, row: &[f64], out: &mut [f64]) {
        for (((o, v), c), s) in out.iter_mut().zip(row).zip(&self.centre).zip(&self.scale) {
            *o = (v - c) * s;
        }
    }
}

/// Where the sums of a bin of rows sit.  A bin holds the rows of one time (in memory)
/// or those of one event time and of the censored times up to the next (a streamed
/// design's table): its number of events, their weight, their sums of w eta and of w x;
/// then, for its rows without an event and for those with one, the sums of the risk
/// r = w exp(eta), of r x and of r x x' (lower triangle, row by row).
#[derive(Clone, Copy)]
struct Layout {
    p: usize,
}

impl Layout {
    const EVENTS: usize = 0;
    const EVENT_WEIGHT: usize = 1;
    const EVENT_ETA: usize = 2;
    const EVENT_X: usize = 3;

    fn block(self) -> usize {
        1 + self.p + self.p * (self.p + 1) / 2
    }
    fn censored(self) -> usize {
        Self::EVENT_X + self.p
    }
    fn dead(self) -> usize {
        self.censored() + self.block()
    }
    fn width(self) -> usize {
        self.dead() + self.block()
    }

    /// A row (scaled covariates `x`, linear predictor `eta`) added to its bin.
    fn add_row(self, bin: &mut [f64], x: &[f64], w: f64, eta: f64, event: bool) {
        let p = self.p;
        let risk = eta.exp() * w;
        if event {
            bin[Self::EVENTS] += 1.0;
            bin[Self::EVENT_WEIGHT] += w;
            bin[Self::EVENT_ETA] += w * eta;
            for (s, v) in bin[Self::EVENT_X..Self::EVENT_X + p].iter_mut().zip(x) {
                *s += w * v;
            }
        }
        let at = if event { self.dead() } else { self.censored() };
        bin[at] += risk;
        let (sum, cross) = bin[at + 1..at + self.block()].split_at_mut(p);
        for j in 0..p {
            let rx = risk * x[j];
            sum[j] += rx;
            let tri = &mut cross[j * (j + 1) / 2..];
            for k in 0..=j {
                tri[k] += rx * x[k];
            }
        }
    }
}

fn eta(x: &[f64], beta: &[f64]) -> f64 {
    x.iter().zip(beta).map(|(a, b)| a * b).sum()
}

/// The partial likelihood, its gradient and information at one beta, and the hazard
/// steps there that score residuals read.
pub struct Evaluation {
    loglik: f64,
    u: Vec<f64>,
    /// Row-major p x p.
    imat: Vec<f64>,
    steps: ScoreSteps,
}

/// Per event time (ascending), what a row's score residual (R's `coxscore2`) reads: the
/// cumulative hazard up to it and the cumulative sum of dH x̄; its own steps' sums of
/// Efron's down-weighted dH and dH x̄, and the mean of its steps' x̄.  For row k with
/// time t: -r_k (x_k H(t) - HX(t)), plus, for an event, r_k (x_k dH_down - dHX_down) +
/// (x_k - mean x̄) at its own time.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSteps {
    pub p: usize,
    pub times: Vec<f64>,
    /// Per event time: H, HX (p), dH_down, dHX_down (p), mean x̄ (p).
    pub rows: Vec<f64>,
}

impl ScoreSteps {
    pub fn new(p: usize, times: Vec<f64>, rows: Vec<f64>) -> Result<ScoreSteps> {
        if rows.len() != times.len() * (2 + 3 * p) || !times.is_sorted() {
            return Err(CoreError::Shape(format!(
                "{} step values for {} event times of {p} covariates (in ascending order)",
                rows.len(),
                times.len()
            )));
        }
        Ok(ScoreSteps { p, times, rows })
    }

    /// The score residual of a row (scaled covariates `x`, r = exp(eta)) into `out`.
    fn residual(&self, x: &[f64], r: f64, time: f64, event: bool, out: &mut [f64]) {
        let p = self.p;
        let at = self.times.partition_point(|&s| s <= time);
        if at == 0 {
            out.fill(0.0);
            return;
        }
        let row = &self.rows[(at - 1) * (2 + 3 * p)..at * (2 + 3 * p)];
        let (h, hx) = (row[0], &row[1..=p]);
        let (down, down_x, mean_x) = (row[1 + p], &row[2 + p..2 + 2 * p], &row[2 + 2 * p..]);
        for j in 0..p {
            out[j] = -r * (x[j] * h - hx[j]);
            if event {
                out[j] += r * (x[j] * down - down_x[j]) + (x[j] - mean_x[j]);
            }
        }
    }
}

/// R's `coxfit6_iter` walk back from the latest bin: a bin's rows without an event join
/// the risk set, then its events, in one step (Breslow, or a single event) or in d
/// equal steps (Efron's d tied events); at each event time it also keeps what the score
/// residuals need (what R's `coxscore2` recomputes from the same sums).
struct Walk {
    layout: Layout,
    ties: Ties,
    denom: f64,
    a: Vec<f64>,
    /// Lower triangle, row by row.
    cmat: Vec<f64>,
    loglik: f64,
    u: Vec<f64>,
    imat: Vec<f64>,
    /// Per event time, latest first: its time and dH, dH_down, dHX (p), dHX_down (p),
    /// mean x̄ (p).
    times: Vec<f64>,
    steps: Vec<f64>,
}

impl Walk {
    fn new(p: usize, ties: Ties) -> Walk {
        Walk {
            layout: Layout { p },
            ties,
            denom: 0.0,
            a: vec![0.0; p],
            cmat: vec![0.0; p * (p + 1) / 2],
            loglik: 0.0,
            u: vec![0.0; p],
            imat: vec![0.0; p * p],
            times: Vec::new(),
            steps: Vec::new(),
        }
    }

    fn add_bin(&mut self, time: f64, bin: &[f64]) {
        let l = self.layout;
        let p = l.p;
        let censored = &bin[l.censored()..l.dead()];
        self.denom += censored[0];
        for (a, v) in self.a.iter_mut().zip(&censored[1..=p]) {
            *a += v;
        }
        for (c, v) in self.cmat.iter_mut().zip(&censored[1 + p..]) {
            *c += v;
        }
        let ndead = bin[Layout::EVENTS];
        if ndead == 0.0 {
            return;
        }
        self.loglik += bin[Layout::EVENT_ETA];
        for (u, v) in self.u.iter_mut().zip(&bin[Layout::EVENT_X..]) {
            *u += v;
        }
        let deadwt = bin[Layout::EVENT_WEIGHT];
        // Breslow: all tied events in one step; Efron: `ndead` steps of 1/ndead each.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (k, wtave) = if self.ties == Ties::Breslow || ndead == 1.0 {
            (1, deadwt)
        } else {
            (ndead as usize, deadwt / ndead)
        };
        let frac = 1.0 / k as f64;
        let dead = &bin[l.dead()..l.width()];
        let (denom2, a2, cmat2) = (dead[0], &dead[1..=p], &dead[1 + p..]);
        let at = self.steps.len();
        self.times.push(time);
        self.steps.resize(at + 2 + 3 * p, 0.0);
        for s in 0..k {
            self.denom += denom2 * frac;
            self.loglik -= wtave * self.denom.ln();
            // The step's share of the events still in the risk set, as `coxscore2` counts.
            let down = (k - 1 - s) as f64 / k as f64;
            let hazard = wtave / self.denom;
            let step = &mut self.steps[at..];
            step[0] += hazard;
            step[1] += hazard * down;
            for j in 0..p {
                self.a[j] += a2[j] * frac;
                let mean = self.a[j] / self.denom;
                self.u[j] -= wtave * mean;
                step[2 + j] += hazard * mean;
                step[2 + p + j] += hazard * down * mean;
                step[2 + 2 * p + j] += mean / k as f64;
                let row = j * (j + 1) / 2;
                for c in 0..=j {
                    self.cmat[row + c] += cmat2[row + c] * frac;
                    self.imat[j * p + c] +=
                        wtave * (self.cmat[row + c] - mean * self.a[c]) / self.denom;
                }
            }
        }
    }

    fn finish(mut self) -> Evaluation {
        let p = self.layout.p;
        for j in 0..p {
            for k in 0..j {
                self.imat[k * p + j] = self.imat[j * p + k];
            }
        }
        // Forward in time: the running sums over the event times up to each.
        let width = 2 + 3 * p;
        let mut rows = vec![0.0; self.steps.len()];
        let (mut h, mut hx) = (0.0, vec![0.0; p]);
        for (out, step) in rows
            .chunks_exact_mut(width)
            .zip(self.steps.chunks_exact(width).rev())
        {
            h += step[0];
            for (c, v) in hx.iter_mut().zip(&step[2..2 + p]) {
                *c += v;
            }
            out[0] = h;
            out[1..=p].copy_from_slice(&hx);
            out[1 + p] = step[1];
            out[2 + p..].copy_from_slice(&step[2 + p..]);
        }
        self.times.reverse();
        Evaluation {
            loglik: self.loglik,
            u: self.u,
            imat: self.imat,
            steps: ScoreSteps {
                p,
                times: self.times,
                rows,
            },
        }
    }
}

/// The partial likelihood of a model's rows at a beta (on the scaled covariates): the
/// rows in memory, or a streamed design's batches, each pass summing its rows to bins.
pub trait RiskSets {
    fn evaluate(&mut self, beta: &[f64]) -> Result<Evaluation>;
}

/// The rows in ascending time (ties in row order): their order, times, events and
/// weights.  The covariates are read through the order as each pass needs them, centred
/// and scaled: a copy of them sorted would be n x p values (the model's columns are
/// fewer: a factor's dummies are one column of codes).
struct Prepared<'a> {
    rows: CoxRows<'a>,
    ties: Ties,
    order: Vec<usize>,
    time: Vec<f64>,
    event: Vec<bool>,
    weights: Vec<f64>,
    /// Where each run of tied times starts in time order, and n at the end.
    runs: Vec<usize>,
    scaling: Scaling,
}

/// Rows of the time runs whose bins one parallel step sums before the walk reads them:
/// bounds the bins held at once.
const WINDOW_ROWS: usize = 1 << 16;

impl<'a> Prepared<'a> {
    fn new(input: &CoxInput<'a>) -> Result<Self> {
        let rows = input.rows;
        rows.check()?;
        if !rows.weights.iter().any(|w| *w > 0.0) {
            return Err(CoreError::Value("no row has a positive weight".into()));
        }
        let n = rows.n;
        let scaling = Scaling::of(&rows);
        let mut order: Vec<usize> = (0..n).collect();
        // Stable: ties keep their row order, whatever the threads.
        order.par_sort_by(|&a, &b| rows.time[a].total_cmp(&rows.time[b]));
        let time: Vec<f64> = order.iter().map(|&r| rows.time[r]).collect();
        let runs = (0..=n)
            .filter(|&i| i == 0 || i == n || time[i] != time[i - 1])
            .collect();
        Ok(Prepared {
            rows,
            ties: input.ties,
            event: order.iter().map(|&r| rows.event[r]).collect(),
            weights: order.iter().map(|&r| rows.weights[r]).collect(),
            order,
            time,
            runs,
            scaling,
        })
    }
}

impl RiskSets for Prepared<'_> {
    /// One bin per distinct time, latest first.  The bins of a window of runs are summed
    /// in parallel, each bin's rows in their order (the same digits whatever the
    /// threads), then walked.
    fn evaluate(&mut self, beta: &[f64]) -> Result<Evaluation> {
        let p = self.rows.p;
        let layout = Layout { p };
        let width = layout.width();
        let mut walk = Walk::new(p, self.ties);
        let mut bins = Vec::new();
        let mut end = self.runs.len() - 1;
        while end > 0 {
            let mut start = end - 1;
            while start > 0 && self.runs[end] - self.runs[start] < WINDOW_ROWS {
                start -= 1;
            }
            bins.clear();
            bins.resize((end - start) * width, 0.0);
            bins.par_chunks_mut(width).enumerate().for_each_init(
                || (vec![0.0; p], vec![0.0; p]),
                |(raw, x), (k, bin)| {
                    for i in self.runs[start + k]..self.runs[start + k + 1] {
                        self.rows.row(self.order[i], raw);
                        self.scaling.apply(raw, x);
                        layout.add_row(bin, x, self.weights[i], eta(x, beta), self.event[i]);
                    }
                },
            );
            for (k, bin) in bins.chunks_exact(width).enumerate().rev() {
                walk.add_bin(self.time[self.runs[start + k]], bin);
            }
            end = start;
        }
        Ok(walk.finish())
    }
}

/// A batch's rows summed to bins at `beta` (on the scaled covariates), one bin per event
/// time of the whole fit (`event_times`, ascending): a row goes to the bin of the
/// latest event time at or before its own (rows before the first are in no event's risk
/// set), which enters the walk exactly where R's walk adds it.  The bins of all the
/// batches, added, are the fit's (`walk_table`).
pub fn risk_table(
    rows: &CoxRows,
    scaling: &Scaling,
    beta: &[f64],
    event_times: &[f64],
) -> Result<Vec<f64>> {
    rows.check()?;
    let p = rows.p;
    if scaling.centre.len() != p || scaling.scale.len() != p || beta.len() != p {
        return Err(CoreError::Shape(format!(
            "a scaling of {} columns and {} coefficients for {p} columns",
            scaling.centre.len(),
            beta.len()
        )));
    }
    let layout = Layout { p };
    let width = layout.width();
    let mut table = vec![0.0; event_times.len() * width];
    let (mut raw, mut x) = (vec![0.0; p], vec![0.0; p]);
    for i in 0..rows.n {
        let t = rows.time[i];
        let at = event_times.partition_point(|&s| s <= t);
        if rows.event[i] && (at == 0 || event_times[at - 1] != t) {
            return Err(CoreError::Value(format!(
                "the event at time {t} (row {i}) is not among the fit's event times: the data \
                 changed between passes"
            )));
        }
        if at == 0 {
            continue;
        }
        rows.row(i, &mut raw);
        scaling.apply(&raw, &mut x);
        let bin = &mut table[(at - 1) * width..at * width];
        layout.add_row(bin, &x, rows.weights[i], eta(&x, beta), rows.event[i]);
    }
    Ok(table)
}

/// The walk over a streamed fit's bins (the batches' `risk_table`s added).
pub fn walk_table(event_times: &[f64], table: &[f64], p: usize, ties: Ties) -> Result<Evaluation> {
    let width = Layout { p }.width();
    if table.len() != event_times.len() * width {
        return Err(CoreError::Shape(format!(
            "a table of {} values for {} event times of {p} covariates",
            table.len(),
            event_times.len()
        )));
    }
    let mut walk = Walk::new(p, ties);
    for (t, bin) in event_times.iter().zip(table.chunks_exact(width)).rev() {
        walk.add_bin(*t, bin);
    }
    Ok(walk.finish())
}

/// Fit by R's Newton–Raphson from `init` (zeros if None).  Aliased columns (a zero pivot
/// of the information at the start) are an error, with their positions; a fit that runs
/// out of iterations is returned with `converged = false`.
pub fn fit(input: &CoxInput, init: Option<&[f64]>) -> Result<CoxFit> {
    let mut prep = Prepared::new(input)?;
    let scaling = prep.scaling.clone();
    newton(&mut prep, scaling, init, input.control)
}

/// R's `coxfit6` iterations over any rows' risk sets, on covariates scaled by `scaling`.
pub fn newton(
    sets: &mut impl RiskSets,
    scaling: Scaling,
    init: Option<&[f64]>,
    control: Control,
) -> Result<CoxFit> {
    let p = scaling.scale.len();
    let mut beta: Vec<f64> = match init {
        Some(b) if b.len() == p => b.iter().zip(&scaling.scale).map(|(b, s)| b / s).collect(),
        Some(b) => {
            return Err(CoreError::Shape(format!(
                "{} initial values for {p} coefficients",
                b.len()
            )))
        }
        None => vec![0.0; p],
    };
    let first = sets.evaluate(&beta)?;
    let mut factor = Ldl::new(&first.imat, p, control.toler_chol);
    if !factor.singular().is_empty() {
        return Err(CoreError::Aliased {
            columns: factor.singular().to_vec(),
        });
    }
    let loglik0 = first.loglik;
    let (mut u, mut steps) = (first.u, first.steps);
    let mut loglik = loglik0;
    let mut converged = false;
    let mut iterations = 0;
    if control.maxit > 0 && loglik0.is_finite() {
        let step = factor.solve(&u);
        let mut newbeta: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
        let mut halving = 0.0;
        for iter in 1..=control.maxit {
            iterations = iter;
            let ev = sets.evaluate(&newbeta)?;
            let newfactor = Ldl::new(&ev.imat, p, control.toler_chol);
            let finite = ev.loglik.is_finite()
                && ev.u.iter().all(|v| v.is_finite())
                && ev.imat.iter().all(|v| v.is_finite());
            if finite && (1.0 - loglik / ev.loglik).abs() <= control.eps {
                beta = newbeta;
                factor = newfactor;
                (u, steps, loglik) = (ev.u, ev.steps, ev.loglik);
                converged = true;
                break;
            }
            if !finite || ev.loglik < loglik {
                // Not improving: step back towards the last good beta, harder each time.
                halving += 1.0;
                for (nb, b) in newbeta.iter_mut().zip(&beta) {
                    *nb = (*nb + halving * b) / (halving + 1.0);
                }
            } else {
                halving = 0.0;
                loglik = ev.loglik;
                let step = newfactor.solve(&ev.u);
                beta.clone_from(&newbeta);
                for (nb, s) in newbeta.iter_mut().zip(&step) {
                    *nb += s;
                }
                factor = newfactor;
                (u, steps) = (ev.u, ev.steps);
            }
        }
        if !converged {
            // As R: the information and score of the last good beta.
            let ev = sets.evaluate(&beta)?;
            factor = Ldl::new(&ev.imat, p, control.toler_chol);
            (u, steps, loglik) = (ev.u, ev.steps, ev.loglik);
        }
    }
    let scaled_var = factor.inverse();
    let s = &scaling.scale;
    let coefficients: Vec<f64> = beta.iter().zip(s).map(|(b, s)| b * s).collect();
    let mut var = vec![0.0; p * p];
    for j in 0..p {
        for k in 0..p {
            var[j * p + k] = scaled_var[j * p + k] * s[j] * s[k];
        }
    }
    let score: Vec<f64> = u.iter().zip(s).map(|(u, s)| u / s).collect();
    let infinite = if converged && control.maxit > 1 {
        (0..p)
            .filter(|&k| {
                let step: f64 = (0..p).map(|j| score[j] * var[j * p + k]).sum::<f64>().abs();
                !score[k].is_finite()
                    || (step > control.eps && step > control.toler_inf * coefficients[k].abs())
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(CoxFit {
        solution: Solution {
            scaling,
            beta,
            var: var.clone(),
            steps,
        },
        coefficients,
        var,
        loglik: [loglik0, loglik],
        iterations,
        converged,
        infinite,
    })
}

/// A fit's solution as each row's influence value reads it: the covariates' scaling, the
/// coefficients on the scaled covariates, the model-based covariance and the hazard
/// steps at the coefficients.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    pub scaling: Scaling,
    pub beta: Vec<f64>,
    pub var: Vec<f64>,
    pub steps: ScoreSteps,
}

impl Solution {
    pub fn new(scaling: Scaling, beta: Vec<f64>, var: Vec<f64>, steps: ScoreSteps) -> Result<Self> {
        let p = steps.p;
        if scaling.centre.len() != p
            || scaling.scale.len() != p
            || beta.len() != p
            || var.len() != p * p
        {
            return Err(CoreError::Shape(format!(
                "a solution of {} coefficients, {} covariance values and {} scalings for {p} covariates",
                beta.len(),
                var.len(),
                scaling.scale.len()
            )));
        }
        Ok(Solution {
            scaling,
            beta,
            var,
            steps,
        })
    }

    /// The rows as a fit of this solution reads them.
    pub(crate) fn check(&self, rows: &CoxRows) -> Result<()> {
        rows.check()?;
        if rows.p != self.beta.len() {
            return Err(CoreError::Shape(format!(
                "rows of {} covariates for a fit of {}",
                rows.p,
                self.beta.len()
            )));
        }
        Ok(())
    }

    /// Row i's influence value into `out`: its score residual times the model-based
    /// covariance, times its weight (R's `resid(fit, "dfbeta", weighted = TRUE)`);
    /// `x` and `resid` are p-long scratch (and `out`, until the value is written).
    fn influence_row(
        &self,
        rows: &CoxRows,
        i: usize,
        x: &mut [f64],
        resid: &mut [f64],
        out: &mut [f64],
    ) {
        let p = rows.p;
        rows.row(i, out);
        self.scaling.apply(out, x);
        let r = eta(x, &self.beta).exp();
        self.steps
            .residual(x, r, rows.time[i], rows.event[i], resid);
        // Back from the scaled covariates: a residual is linear in x.
        for (v, s) in resid.iter_mut().zip(&self.scaling.scale) {
            *v /= s;
        }
        let w = rows.weights[i];
        for (k, o) in out.iter_mut().enumerate() {
            *o = w * (0..p).map(|j| resid[j] * self.var[j * p + k]).sum::<f64>();
        }
    }

    /// The rows' influence values summed to their units (`units`: each row's unit code
    /// below `n_units`), n_units x p, and each unit's number of rows of positive weight.
    pub fn unit_totals(
        &self,
        rows: &CoxRows,
        units: &[u32],
        n_units: usize,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        self.check(rows)?;
        if units.len() != rows.n {
            return Err(CoreError::Shape(format!(
                "{} unit codes for {} rows",
                units.len(),
                rows.n
            )));
        }
        if let Some(u) = units.iter().find(|&&u| u as usize >= n_units) {
            return Err(CoreError::Value(format!(
                "unit code {u} is not below {n_units}"
            )));
        }
        Ok(self.sum_to_units(rows, |i| units[i] as usize, n_units))
    }

    /// The rows' influence values summed to their units (`unit(i)`, below `n_units`),
    /// n_units x p, and each unit's rows of positive weight; the rows checked already.
    pub(crate) fn sum_to_units(
        &self,
        rows: &CoxRows,
        unit: impl Fn(usize) -> usize,
        n_units: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let p = rows.p;
        let (mut totals, mut counts) = (vec![0.0; n_units * p], vec![0.0; n_units]);
        let (mut x, mut resid, mut row) = (vec![0.0; p], vec![0.0; p], vec![0.0; p]);
        for i in 0..rows.n {
            self.influence_row(rows, i, &mut x, &mut resid, &mut row);
            let u = unit(i);
            for (t, v) in totals[u * p..(u + 1) * p].iter_mut().zip(&row) {
                *t += v;
            }
            if rows.weights[i] > 0.0 {
                counts[u] += 1.0;
            }
        }
        (totals, counts)
    }
}

/// Influence values of the coefficients (n x p, row-major, rows in input order): each
/// row's score residual times `fit.var`, times the row's weight (R's `resid(fit,
/// "dfbeta", weighted = TRUE)`).  Their design-based covariance is `svycoxph`'s.
pub fn influence(rows: &CoxRows, fit: &CoxFit) -> Result<Vec<f64>> {
    let solution = &fit.solution;
    solution.check(rows)?;
    let p = rows.p;
    let mut out = vec![0.0; rows.n * p];
    // Rows are independent: the same digits whatever the threads.
    out.par_chunks_mut(p * 4096)
        .enumerate()
        .for_each(|(c, chunk)| {
            let (mut x, mut resid) = (vec![0.0; p], vec![0.0; p]);
            for (k, row) in chunk.chunks_exact_mut(p).enumerate() {
                solution.influence_row(rows, c * 4096 + k, &mut x, &mut resid, row);
            }
        });
    Ok(out)
}

/// The model of `input` refitted from `init` with each column of `weights` (n x r,
/// row-major) in place of its weights: r x p.  A replicate whose fit fails (aliased
/// columns, no positive weight) gives NaN, which the replicate variance leaves out; R
/// uses a replicate's coefficients whether or not its fit converged, and so does this.
pub fn replicate_coefficients(
    input: &CoxInput,
    weights: &[f64],
    r: usize,
    init: &[f64],
) -> Result<Vec<f64>> {
    let (n, p) = (input.rows.n, input.rows.p);
    let rows = refit_replicates(weights, n, r, |_, w| {
        let one = CoxInput {
            rows: CoxRows {
                weights: &w,
                ..input.rows
            },
            ..*input
        };
        Ok(match fit(&one, Some(init)) {
            Ok(f) => f.coefficients,
            Err(_) => vec![f64::NAN; p],
        })
    })?;
    Ok(rows.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        x: &'a [f64],
        time: &'a [f64],
        event: &'a [bool],
        w: &'a [f64],
        ties: Ties,
    ) -> CoxInput<'a> {
        CoxInput {
            rows: CoxRows {
                x: Covariates::Dense(x),
                n: time.len(),
                p: x.len() / time.len(),
                time,
                event,
                weights: w,
            },
            ties,
            control: Control::default(),
        }
    }

    // A small data set with tied events (at 2 and at 4) and a censored row at a tie-free time.
    const TIME: [f64; 8] = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0];
    const STATUS: [bool; 8] = [true, true, true, false, true, true, false, true];
    const X: [f64; 8] = [0.5, 1.2, -0.3, 0.8, 0.0, 2.0, -1.0, 1.5];

    #[test]
    fn model_columns_fit_as_their_dense_matrix() {
        // x and a factor g (levels 0..2, dummies for 1 and 2) at the model rows 1..8
        // (row 0 left out, as a zero weight is): the fit and its influence values read
        // from the columns are those of the dense matrix, to the bit.
        use crate::models::Factor;
        let xs = [9.0, 0.5, 1.2, -0.3, 0.8, 0.0, 2.0, -1.0, 1.5];
        let g = [2u32, 0, 1, 2, 1, 0, 2, 1, 0];
        let level = |level| Factor::Level { codes: &g, level };
        let columns = Regressors::new(
            9,
            vec![
                vec![],
                vec![Factor::Values(&xs)],
                vec![level(1)],
                vec![level(2)],
            ],
        )
        .unwrap();
        let which = [1, 2, 3];
        let rows: Vec<usize> = (1..9).collect();
        let dense: Vec<f64> = rows
            .iter()
            .flat_map(|&r| which.map(|j| columns.value_at(j, r)))
            .collect();
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        let by_matrix = input(&dense, &TIME, &STATUS, &w, Ties::Efron);
        let by_columns = CoxInput {
            rows: CoxRows {
                x: Covariates::Model {
                    columns: &columns,
                    which: &which,
                    rows: Some(&rows),
                    first: 0,
                },
                ..by_matrix.rows
            },
            ..by_matrix
        };
        let (a, b) = (
            fit(&by_matrix, None).unwrap(),
            fit(&by_columns, None).unwrap(),
        );
        assert_eq!(a.coefficients, b.coefficients);
        assert_eq!(a.var, b.var);
        assert_eq!(
            influence(&by_matrix.rows, &a).unwrap(),
            influence(&by_columns.rows, &b).unwrap()
        );
        // A part of the rows reads the same rows of the columns.
        let mut one = [0.0; 3];
        by_columns.rows.part(5, 8).row(1, &mut one);
        assert_eq!(one, [dense[18], dense[19], dense[20]]);
    }

    #[test]
    fn matches_r_coxph_with_weights() {
        // R 4.2, survival 3: f <- coxph(Surv(time, status) ~ x, weights = w, ties = t);
        // coef(f), f$naive.var (vcov(f) is a sandwich with non-integer weights), f$loglik,
        // f$iter, resid(f, "dfbeta", weighted = TRUE).
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        let want = [
            (
                Ties::Efron,
                [
                    0.27092640088208425,
                    0.14184750808122973,
                    -11.733855601417897,
                    -11.465204407140728,
                ],
                [
                    -0.02984502514029648,
                    0.062100277574992264,
                    -0.15380371917762586,
                    -0.0032172105971124336,
                    -0.012825128953577698,
                    -0.024968446768287935,
                    0.2906702268025246,
                    -0.12811097370396224,
                ],
            ),
            (
                Ties::Breslow,
                [
                    0.2522919467882835,
                    0.14543580894105404,
                    -12.248987208835224,
                    -12.022046897435548,
                ],
                [
                    -0.028368031394267877,
                    0.05707527612073237,
                    -0.13896138546367323,
                    -0.004874212839155007,
                    -0.017004244650412444,
                    -0.03448559600454964,
                    0.28016050118498265,
                    -0.11354230691030927,
                ],
            ),
        ];
        for (ties, fitted, dfbeta) in want {
            let inp = input(&X, &TIME, &STATUS, &w, ties);
            let f = fit(&inp, None).unwrap();
            let got = [f.coefficients[0], f.var[0], f.loglik[0], f.loglik[1]];
            for (g, r) in got.iter().zip(fitted) {
                assert!((g - r).abs() <= 1e-13 * r.abs(), "{ties:?}: {got:?}");
            }
            assert_eq!(f.iterations, 3);
            for (g, r) in influence(&inp.rows, &f).unwrap().iter().zip(dfbeta) {
                assert!((g - r).abs() <= 1e-12 * r.abs(), "{ties:?}: {g} vs {r}");
            }
        }
    }

    #[test]
    fn score_is_zero_at_the_fit_and_influence_sums_to_it() {
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        for ties in [Ties::Efron, Ties::Breslow] {
            let inp = input(&X, &TIME, &STATUS, &w, ties);
            let f = fit(&inp, None).unwrap();
            assert!(f.converged && f.infinite.is_empty());
            // The weighted score residuals sum to the score, zero at the maximum.
            let infl = influence(&inp.rows, &f).unwrap();
            let total: f64 = infl.iter().sum();
            assert!(total.abs() < 1e-8, "{ties:?}: {total}");
        }
    }

    #[test]
    fn influence_is_the_derivative_in_the_weights() {
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        let tight = Control {
            eps: 1e-15,
            ..Control::default()
        };
        let fit_with = |w: &[f64]| {
            let mut inp = input(&X, &TIME, &STATUS, w, Ties::Efron);
            inp.control = tight;
            fit(&inp, None).unwrap()
        };
        let mut inp = input(&X, &TIME, &STATUS, &w, Ties::Efron);
        inp.control = tight;
        let f = fit_with(&w);
        let infl = influence(&inp.rows, &f).unwrap();
        let h = 1e-6;
        for k in 0..w.len() {
            let (mut up, mut down) = (w, w);
            up[k] *= 1.0 + h;
            down[k] *= 1.0 - h;
            let numeric =
                (fit_with(&up).coefficients[0] - fit_with(&down).coefficients[0]) / (2.0 * h);
            assert!(
                (infl[k] - numeric).abs() < 1e-6,
                "row {k}: {} vs {numeric}",
                infl[k]
            );
        }
    }

    #[test]
    fn no_ties_efron_equals_breslow() {
        let time = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let status = [true, false, true, true, false, true];
        let x = [0.1, 0.9, -0.4, 1.1, 0.3, -0.8];
        let w = [1.0; 6];
        let e = fit(&input(&x, &time, &status, &w, Ties::Efron), None).unwrap();
        let b = fit(&input(&x, &time, &status, &w, Ties::Breslow), None).unwrap();
        assert_eq!(e.coefficients, b.coefficients);
    }

    #[test]
    fn constant_column_is_aliased() {
        let x: Vec<f64> = X.iter().flat_map(|v| [*v, 3.0]).collect();
        let w = [1.0; 8];
        let err = fit(&input(&x, &TIME, &STATUS, &w, Ties::Efron), None).unwrap_err();
        assert_eq!(err, CoreError::Aliased { columns: vec![1] });
    }

    /// Rows held as batches, as a streamed design holds them: each evaluation sums every
    /// batch to the bins of the fit's event times and adds the tables.
    struct Batches<'a> {
        parts: Vec<CoxRows<'a>>,
        scaling: Scaling,
        event_times: Vec<f64>,
        ties: Ties,
    }

    impl RiskSets for Batches<'_> {
        fn evaluate(&mut self, beta: &[f64]) -> Result<Evaluation> {
            let mut total: Vec<f64> = Vec::new();
            for part in &self.parts {
                let table = risk_table(part, &self.scaling, beta, &self.event_times)?;
                if total.is_empty() {
                    total = table;
                } else {
                    total.iter_mut().zip(&table).for_each(|(a, b)| *a += b);
                }
            }
            walk_table(&self.event_times, &total, self.parts[0].p, self.ties)
        }
    }

    #[test]
    fn batches_fit_and_sum_as_the_rows_in_memory() {
        // Two covariates (one a dummy), tied events, a censored row between event times
        // and one before the first: split into batches of 3, 4 and 1 rows, in another order.
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        let x: Vec<f64> = X
            .iter()
            .zip([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
            .flat_map(|(a, b)| [*a * 100.0 + 7.0, b])
            .collect();
        let time = [1.5, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 0.5];
        let status = [true, true, true, false, true, true, false, false];
        for ties in [Ties::Efron, Ties::Breslow] {
            let inp = input(&x, &time, &status, &w, ties);
            let whole = fit(&inp, None).unwrap();
            let split = |lo: usize, hi: usize| inp.rows.part(lo, hi);
            let parts = vec![split(5, 8), split(0, 4), split(4, 5)];
            let mut moments = Moments::of(&parts[0]).unwrap();
            for part in &parts[1..] {
                moments.add(&Moments::of(part).unwrap()).unwrap();
            }
            assert_eq!(moments.dummy, [false, true]);
            let centre = moments.centre();
            let mut spreads = vec![0.0; 2];
            for part in &parts {
                for (s, v) in spreads.iter_mut().zip(spread(part, &centre).unwrap()) {
                    *s += v;
                }
            }
            let mut batches = Batches {
                parts,
                scaling: Scaling::new(&moments, &spreads),
                event_times: vec![1.5, 2.0, 4.0],
                ties,
            };
            let scaling = batches.scaling.clone();
            let streamed = newton(&mut batches, scaling, None, Control::default()).unwrap();
            assert_eq!(streamed.iterations, whole.iterations);
            for (a, b) in streamed.coefficients.iter().zip(&whole.coefficients) {
                assert!((a - b).abs() <= 1e-12 * b.abs(), "{ties:?}: {a} vs {b}");
            }
            for (a, b) in streamed.var.iter().zip(&whole.var) {
                assert!((a - b).abs() <= 1e-12 * b.abs(), "{ties:?}: {a} vs {b}");
            }
            // Every row's influence summed to units 0 and 1 (rows alternate), batch by batch.
            let infl = influence(&inp.rows, &whole).unwrap();
            let mut totals = [0.0; 4];
            for (part, lo) in batches.parts.iter().zip([5u32, 0, 4]) {
                let units: Vec<u32> = (lo..lo + part.n as u32).map(|i| i % 2).collect();
                let (t, counts) = streamed.solution.unit_totals(part, &units, 2).unwrap();
                assert_eq!(counts.iter().sum::<f64>(), part.n as f64);
                totals.iter_mut().zip(&t).for_each(|(a, b)| *a += b);
            }
            for u in 0..2 {
                for k in 0..2 {
                    let want: f64 = (u..8).step_by(2).map(|i| infl[i * 2 + k]).sum();
                    assert!((totals[u * 2 + k] - want).abs() <= 1e-12 * want.abs().max(1e-3));
                }
            }
        }
    }

    #[test]
    fn an_event_off_the_fit_event_times_is_refused() {
        let rows = CoxRows {
            x: Covariates::Dense(&[1.0]),
            n: 1,
            p: 1,
            time: &[3.0],
            event: &[true],
            weights: &[1.0],
        };
        let scaling = Scaling {
            centre: vec![0.0],
            scale: vec![1.0],
        };
        let err = risk_table(&rows, &scaling, &[0.0], &[1.0, 2.0]).unwrap_err();
        assert!(err.to_string().contains("not among the fit's event times"));
    }
}
