//! GLM families and links, written as R's `stats` writes them (`binomial()$linkinv`,
//! `family.c`), so that the IRLS path, and so where R's convergence rule stops it, is
//! R's to rounding.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::{CoreError, Result};

/// The variance function and starting values of a family.  The quasi families
/// (`quasibinomial`, `quasipoisson`) fit exactly as their namesakes; they differ only in
/// the dispersion, which survey models estimate from the design anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Gaussian,
    Binomial,
    Poisson,
    Gamma,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Identity,
    Log,
    Inverse,
    Logit,
    Probit,
    Cloglog,
}

const EPS: f64 = f64::EPSILON;
/// R's `family.c`: beyond +-30 the logit link saturates.
const LOGIT_THRESH: f64 = 30.0;

impl Family {
    /// R's family names; `quasibinomial` and `quasipoisson` map to their namesakes.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "gaussian" => Ok(Self::Gaussian),
            "binomial" | "quasibinomial" => Ok(Self::Binomial),
            "poisson" | "quasipoisson" => Ok(Self::Poisson),
            "Gamma" | "gamma" => Ok(Self::Gamma),
            other => Err(CoreError::Value(format!(
                "family {other:?} is not one of gaussian, binomial, quasibinomial, poisson, \
                 quasipoisson, Gamma"
            ))),
        }
    }

    pub fn default_link(self) -> Link {
        match self {
            Self::Gaussian => Link::Identity,
            Self::Binomial => Link::Logit,
            Self::Poisson => Link::Log,
            Self::Gamma => Link::Inverse,
        }
    }

    /// The links R's family function accepts (of those implemented here).
    pub fn check_link(self, link: Link) -> Result<()> {
        use Link::{Cloglog, Identity, Inverse, Log, Logit, Probit};
        let ok = match self {
            Self::Gaussian => matches!(link, Identity | Log | Inverse),
            Self::Binomial => matches!(link, Logit | Probit | Cloglog | Log),
            Self::Poisson => matches!(link, Log | Identity),
            Self::Gamma => matches!(link, Inverse | Identity | Log),
        };
        if ok {
            Ok(())
        } else {
            Err(CoreError::Value(format!(
                "link {:?} is not available for the {self:?} family",
                link.name()
            )))
        }
    }

    pub fn variance(self, mu: f64) -> f64 {
        match self {
            Self::Gaussian => 1.0,
            Self::Binomial => mu * (1.0 - mu),
            Self::Poisson => mu,
            Self::Gamma => mu * mu,
        }
    }

    /// R's `family$validmu`, of one mean: may it be used?
    pub fn valid_mu(self, mu: f64) -> bool {
        match self {
            Self::Gaussian => true,
            Self::Binomial => mu.is_finite() && mu > 0.0 && mu < 1.0,
            Self::Poisson | Self::Gamma => mu.is_finite() && mu > 0.0,
        }
    }

    /// Unit deviance times the prior weight (R's `family$dev.resids`).
    pub fn deviance_residual(self, y: f64, mu: f64, wt: f64) -> f64 {
        match self {
            Self::Gaussian => wt * (y - mu) * (y - mu),
            Self::Binomial => 2.0 * wt * (y_log_y(y, mu) + y_log_y(1.0 - y, 1.0 - mu)),
            Self::Poisson => {
                if y > 0.0 {
                    2.0 * wt * (y * (y / mu).ln() - (y - mu))
                } else {
                    2.0 * mu * wt
                }
            }
            Self::Gamma => {
                let ratio = if y == 0.0 { 1.0 } else { y / mu };
                -2.0 * wt * (ratio.ln() - (y - mu) / mu)
            }
        }
    }

    /// The outcome as R's `family$initialize` leaves it, checked for the family's range:
    /// binomial sets y to 0 where the weight is 0 (a copy only when that changes a value).
    /// The starting means follow row by row ([`Family::start_mean`]).
    pub fn initialize<'y>(
        self,
        link: Link,
        y: &'y [f64],
        weights: &[f64],
    ) -> Result<Cow<'y, [f64]>> {
        match self {
            Self::Gaussian => {
                let bad = match link {
                    Link::Inverse => y.contains(&0.0),
                    Link::Log => y.iter().any(|&v| v <= 0.0),
                    _ => false,
                };
                if bad {
                    return Err(CoreError::Value(format!(
                        "the gaussian family with the {} link needs {} outcomes \
                         to start from (R: cannot find valid starting values)",
                        link.name(),
                        if link == Link::Log {
                            "positive"
                        } else {
                            "non-zero"
                        }
                    )));
                }
                Ok(Cow::Borrowed(y))
            }
            Self::Binomial => {
                let y = if y
                    .par_iter()
                    .zip(weights)
                    .any(|(&v, &w)| w == 0.0 && v != 0.0)
                {
                    Cow::Owned(
                        y.iter()
                            .zip(weights)
                            .map(|(&v, &w)| if w == 0.0 { 0.0 } else { v })
                            .collect(),
                    )
                } else {
                    Cow::Borrowed(y)
                };
                let outside = y.par_iter().filter(|&&v| !(0.0..=1.0).contains(&v)).count();
                if outside > 0 {
                    return Err(CoreError::Value(format!(
                        "a binomial outcome must be a proportion between 0 and 1; \
                         {outside} rows are outside"
                    )));
                }
                Ok(y)
            }
            Self::Poisson => {
                let negative = y.iter().filter(|&&v| v < 0.0).count();
                if negative > 0 {
                    return Err(CoreError::Value(format!(
                        "a poisson outcome must not be negative; {negative} rows are"
                    )));
                }
                Ok(Cow::Borrowed(y))
            }
            Self::Gamma => {
                let bad = y.iter().filter(|&&v| v <= 0.0).count();
                if bad > 0 {
                    return Err(CoreError::Value(format!(
                        "a Gamma outcome must be positive; {bad} rows are not"
                    )));
                }
                Ok(Cow::Borrowed(y))
            }
        }
    }

    /// R's starting mean (`mustart` of `family$initialize`) of a row with outcome `y`
    /// (as [`Family::initialize`] left it) and prior weight `w`.
    pub fn start_mean(self, y: f64, w: f64) -> f64 {
        match self {
            Self::Gaussian | Self::Gamma => y,
            Self::Binomial => (w * y + 0.5) / (w + 1.0),
            Self::Poisson => y + 0.1,
        }
    }

    /// Means confined to an open range whose edge the likelihood can push the fit to
    /// (probabilities, rates): the families where separation can happen.
    pub fn has_bounded_mean(self) -> bool {
        matches!(self, Self::Binomial | Self::Poisson)
    }
}

fn y_log_y(y: f64, mu: f64) -> f64 {
    if y == 0.0 {
        0.0
    } else {
        y * (y / mu).ln()
    }
}

impl Link {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "identity" => Ok(Self::Identity),
            "log" => Ok(Self::Log),
            "inverse" => Ok(Self::Inverse),
            "logit" => Ok(Self::Logit),
            "probit" => Ok(Self::Probit),
            "cloglog" => Ok(Self::Cloglog),
            other => Err(CoreError::Value(format!(
                "link {other:?} is not one of identity, log, inverse, logit, probit, cloglog"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Log => "log",
            Self::Inverse => "inverse",
            Self::Logit => "logit",
            Self::Probit => "probit",
            Self::Cloglog => "cloglog",
        }
    }

    /// eta = g(mu).
    pub fn link(self, mu: f64) -> f64 {
        match self {
            Self::Identity => mu,
            Self::Log => mu.ln(),
            Self::Inverse => 1.0 / mu,
            Self::Logit => (mu / (1.0 - mu)).ln(),
            Self::Probit => qnorm(mu),
            Self::Cloglog => (-(-mu).ln_1p()).ln(),
        }
    }

    /// mu = g^-1(eta), with R's clamps.
    pub fn inverse(self, eta: f64) -> f64 {
        match self {
            Self::Identity => eta,
            Self::Log => eta.exp().max(EPS),
            Self::Inverse => 1.0 / eta,
            Self::Logit => {
                let t = if eta < -LOGIT_THRESH {
                    EPS
                } else if eta > LOGIT_THRESH {
                    1.0 / EPS
                } else {
                    eta.exp()
                };
                t / (1.0 + t)
            }
            Self::Probit => {
                let thresh = -qnorm(EPS);
                pnorm(eta.clamp(-thresh, thresh))
            }
            Self::Cloglog => (-(-eta.exp()).exp_m1()).clamp(EPS, 1.0 - EPS),
        }
    }

    /// d mu / d eta, with R's floors.
    pub fn mu_eta(self, eta: f64) -> f64 {
        match self {
            Self::Identity => 1.0,
            Self::Log => eta.exp().max(EPS),
            Self::Inverse => -1.0 / (eta * eta),
            Self::Logit => {
                if eta.abs() > LOGIT_THRESH {
                    EPS
                } else {
                    let opexp = 1.0 + eta.exp();
                    eta.exp() / (opexp * opexp)
                }
            }
            Self::Probit => dnorm(eta).max(EPS),
            Self::Cloglog => {
                let e = eta.min(700.0);
                (e.exp() * (-e.exp()).exp()).max(EPS)
            }
        }
    }

    /// R's `link$valideta`, of one linear predictor.
    pub fn valid_eta(self, eta: f64) -> bool {
        match self {
            Self::Inverse => eta.is_finite() && eta != 0.0,
            _ => true,
        }
    }

    /// (`inverse(eta)`, `mu_eta(eta)`) with one exponential where both need it (the
    /// logit and log links): the same values as the two calls.
    pub fn inverse_and_mu_eta(self, eta: f64) -> (f64, f64) {
        match self {
            Self::Logit if eta.abs() <= LOGIT_THRESH => {
                let t = eta.exp();
                let opexp = 1.0 + t;
                (t / opexp, t / (opexp * opexp))
            }
            Self::Log => {
                let m = eta.exp().max(EPS);
                (m, m)
            }
            _ => (self.inverse(eta), self.mu_eta(eta)),
        }
    }
}

#[allow(clippy::excessive_precision)]
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_677_939_946_059_934;

/// Standard normal density; beyond |x| = 5 the square is split as R's `dnorm4` does, so
/// the tail keeps full relative accuracy.
pub fn dnorm(x: f64) -> f64 {
    let x = x.abs();
    if x < 5.0 {
        return FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
    }
    if x > 38.6 {
        return 0.0;
    }
    let x1 = (x * 65536.0).round() / 65536.0;
    let x2 = x - x1;
    FRAC_1_SQRT_2PI * ((-0.5 * x1 * x1).exp() * ((-0.5 * x2 - x1) * x2).exp())
}

// The coefficient tables below keep the digits as published (and as R prints them),
// more than an f64 holds, so they can be checked against the sources.
/// Standard normal distribution function, lower tail: W. J. Cody's rational Chebyshev
/// approximations (Math. Comp. 1969; R's `pnorm_both`), accurate to about 1e-18.
#[allow(clippy::excessive_precision)]
pub fn pnorm(x: f64) -> f64 {
    const A: [f64; 5] = [
        2.235_252_035_460_683_928_7,
        161.028_231_068_555_878_81,
        1_067.689_485_460_370_958_2,
        18_154.981_253_343_561_249,
        0.065_682_337_918_207_449_113,
    ];
    const B: [f64; 4] = [
        47.202_581_904_688_241_87,
        976.098_551_737_776_693_22,
        10_260.932_208_618_978_205,
        45_507.789_335_026_729_956,
    ];
    const C: [f64; 9] = [
        0.398_941_512_088_134_667_64,
        8.883_149_794_388_375_941_2,
        93.506_656_132_177_855_979,
        597.270_276_394_800_262_26,
        2_494.537_585_290_372_671_1,
        6_848.190_450_536_282_332_6,
        11_602.651_437_647_350_124,
        9_842.714_838_383_978_021_8,
        1.076_557_677_372_019_231_7e-8,
    ];
    const D: [f64; 8] = [
        22.266_688_044_328_115_691,
        235.387_901_782_624_998_61,
        1_519.377_599_407_554_805,
        6_485.558_298_266_760_755,
        18_615.571_640_885_098_091,
        34_900.952_721_145_977_266,
        38_912.003_286_093_271_411,
        19_685.429_676_859_990_727,
    ];
    const P: [f64; 6] = [
        0.215_898_534_057_956_99,
        0.127_401_161_160_247_363_9,
        0.022_235_277_870_649_807,
        0.001_421_619_193_227_893_466,
        2.911_287_495_116_879_2e-5,
        0.023_073_441_764_940_173_03,
    ];
    const Q: [f64; 5] = [
        1.284_260_096_144_911_21,
        0.468_238_212_480_865_118,
        0.065_988_137_868_928_551_5,
        0.003_782_396_332_027_582_44,
        7.297_515_550_839_662_05e-5,
    ];
    if x.is_nan() {
        return x;
    }
    let y = x.abs();
    if y <= 0.674_489_75 {
        // Central range: 0.5 + x R(x^2).
        let (mut num, mut den) = (0.0, 0.0);
        if y > 0.5 * EPS {
            let xsq = x * x;
            num = A[4] * xsq;
            den = xsq;
            for i in 0..3 {
                num = (num + A[i]) * xsq;
                den = (den + B[i]) * xsq;
            }
        }
        return 0.5 + x * (num + A[3]) / (den + B[3]);
    }
    // Tails: the upper-tail probability of |x| as exp(-x^2/2) R(|x|), the square split
    // in two so the exponent loses no digits.
    let tail = if y <= 32f64.sqrt() {
        let mut num = C[8] * y;
        let mut den = y;
        for i in 0..7 {
            num = (num + C[i]) * y;
            den = (den + D[i]) * y;
        }
        (num + C[7]) / (den + D[7])
    } else if y < 37.519_3 {
        let xsq = 1.0 / (x * x);
        let mut num = P[5] * xsq;
        let mut den = xsq;
        for i in 0..4 {
            num = (num + P[i]) * xsq;
            den = (den + Q[i]) * xsq;
        }
        (FRAC_1_SQRT_2PI - xsq * (num + P[4]) / (den + Q[4])) / y
    } else {
        return if x > 0.0 { 1.0 } else { 0.0 };
    };
    let xsq = (y * 16.0).trunc() / 16.0;
    let del = (y - xsq) * (y + xsq);
    let upper = (-xsq * xsq * 0.5).exp() * (-del * 0.5).exp() * tail;
    if x > 0.0 {
        1.0 - upper
    } else {
        upper
    }
}

/// Standard normal quantile for 0 < p < 1: Wichura's algorithm AS 241 (PPND16, Appl.
/// Statist. 1988; R's `qnorm`), accurate to about 1e-16.
#[allow(clippy::excessive_precision)]
pub fn qnorm(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return if p == 0.0 {
            f64::NEG_INFINITY
        } else if p == 1.0 {
            f64::INFINITY
        } else {
            f64::NAN
        };
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        let num = [
            2_509.080_928_730_122_672_7,
            33_430.575_583_588_128_105,
            67_265.770_927_008_700_853,
            45_921.953_931_549_871_457,
            13_731.693_765_509_461_125,
            1_971.590_950_306_551_442_7,
            133.141_667_891_784_377_45,
            3.387_132_872_796_366_608,
        ];
        let den = [
            5_226.495_278_852_854_561,
            28_729.085_735_721_942_674,
            39_307.895_800_092_710_61,
            21_213.794_301_586_595_867,
            5_394.196_021_424_751_107_7,
            687.187_007_492_057_908_3,
            42.313_330_701_600_911_252,
            1.0,
        ];
        return q * horner(&num, r) / horner(&den, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let mut r = (-tail.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        let num = [
            7.745_450_142_783_414_076_4e-4,
            0.022_723_844_989_269_184_583_3,
            0.241_780_725_177_450_611_77,
            1.270_458_252_452_368_382_58,
            3.647_848_324_763_204_605_04,
            5.769_497_221_460_691_405_5,
            4.630_337_846_156_545_295_9,
            1.423_437_110_749_683_577_34,
        ];
        let den = [
            1.050_750_071_644_416_843_24e-9,
            5.475_938_084_995_344_946e-4,
            0.015_198_666_563_616_457_196_6,
            0.148_103_976_427_480_074_59,
            0.689_767_334_985_100_004_55,
            1.676_384_830_183_803_849_4,
            2.053_191_626_637_758_821_87,
            1.0,
        ];
        horner(&num, r) / horner(&den, r)
    } else {
        r -= 5.0;
        let num = [
            2.010_334_399_292_288_132_65e-7,
            2.711_555_568_743_487_578_15e-5,
            0.001_242_660_947_388_078_438_6,
            0.026_532_189_526_576_123_093,
            0.296_560_571_828_504_891_23,
            1.784_826_539_917_291_335_8,
            5.463_784_911_164_114_369_9,
            6.657_904_643_501_103_777_2,
        ];
        let den = [
            2.044_263_103_389_939_785_64e-15,
            1.421_511_758_316_445_888_7e-7,
            1.846_318_317_510_054_681_8e-5,
            7.868_691_311_456_132_591e-4,
            0.014_875_361_290_850_614_852_5,
            0.136_929_880_922_735_805_31,
            0.599_832_206_555_887_937_69,
            1.0,
        ];
        horner(&num, r) / horner(&den, r)
    };
    if q < 0.0 {
        -val
    } else {
        val
    }
}

/// Polynomial with coefficients highest power first.
fn horner(coef: &[f64], x: f64) -> f64 {
    coef.iter().fold(0.0, |acc, &c| acc * x + c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    #[test]
    #[allow(clippy::excessive_precision)] // R's 17 significant digits, as printed
    fn normal_functions_match_r() {
        // Values printed by R 4.2 with sprintf("%.17g", ...).
        assert!(rel(pnorm(0.5), 0.69146246127401301) < 1e-15);
        assert!(rel(pnorm(-1.96), 0.024997895148220428) < 1e-15);
        assert!(rel(pnorm(-7.0), 1.2798125438858352e-12) < 1e-14);
        assert!(rel(pnorm(3.0), 0.9986501019683699) < 1e-15);
        assert!(rel(qnorm(0.975), 1.9599639845400536) < 1e-15);
        assert!(rel(qnorm(1e-12), -7.0344838253011321) < 1e-15);
        assert!(rel(qnorm(0.3), -0.52440051270804067) < 1e-15);
        assert!(rel(dnorm(1.0), 0.24197072451914337) < 1e-15);
        assert!(rel(dnorm(6.5), 2.6695566147628519e-10) < 1e-14);
        for &p in &[1e-300, 1e-20, 0.01, 0.2, 0.5, 0.77, 0.999] {
            assert!(rel(pnorm(qnorm(p)), p) < 1e-13, "p = {p}");
        }
    }

    #[test]
    fn links_invert_and_differentiate() {
        for link in [
            Link::Identity,
            Link::Log,
            Link::Inverse,
            Link::Logit,
            Link::Probit,
            Link::Cloglog,
        ] {
            for &mu in &[0.1, 0.35, 0.8] {
                let eta = link.link(mu);
                assert!(rel(link.inverse(eta), mu) < 1e-13, "{link:?} at {mu}");
                let h = 1e-6;
                let numeric = (link.inverse(eta + h) - link.inverse(eta - h)) / (2.0 * h);
                assert!(rel(link.mu_eta(eta), numeric) < 1e-7, "{link:?} at {mu}");
            }
            // The shared exponential gives the two calls' values to the bit, clamps too.
            for eta in [-800.0, -31.0, -30.0, -2.5, 0.0, 0.7, 30.0, 31.0, 700.0] {
                let both = link.inverse_and_mu_eta(eta);
                let (mu, mu_eta) = (link.inverse(eta), link.mu_eta(eta));
                assert!(
                    both.0.to_bits() == mu.to_bits() && both.1.to_bits() == mu_eta.to_bits(),
                    "{link:?} at {eta}"
                );
            }
        }
        // R's clamps: the logit saturates beyond 30, the log link never returns 0.
        assert_eq!(Link::Logit.mu_eta(31.0), EPS);
        assert_eq!(Link::Log.inverse(-800.0), EPS);
    }

    #[test]
    fn families_check_outcomes() {
        let w = [1.0, 2.0, 0.0];
        let y = [0.0, 1.0, 7.0];
        // A zero weight zeroes the outcome first, as R does, so 7 is not an error.
        let y = Family::Binomial.initialize(Link::Logit, &y, &w).unwrap();
        assert_eq!(&y[..], [0.0, 1.0, 0.0]);
        let mu: Vec<f64> = y
            .iter()
            .zip(w)
            .map(|(&y, w)| Family::Binomial.start_mean(y, w))
            .collect();
        assert_eq!(mu, vec![0.25, 2.5 / 3.0, 0.5]);
        assert!(Family::Binomial
            .initialize(Link::Logit, &[0.0, 1.5, 1.0], &w)
            .is_err());
        assert!(Family::Poisson
            .initialize(Link::Log, &[-1.0], &[1.0])
            .is_err());
        assert!(Family::Gamma
            .initialize(Link::Inverse, &[0.0], &[1.0])
            .is_err());
        assert!(Family::Gaussian.check_link(Link::Logit).is_err());
        assert_eq!(
            Family::parse("quasipoisson").unwrap().default_link(),
            Link::Log
        );
    }

    #[test]
    #[allow(clippy::excessive_precision)] // R's 17 printed digits, as R printed them
    fn logit_mu_eta_and_binomial_deviance_are_r_s_digits() {
        // R: options(digits=17); e <- c(-40, -30.5, -30, -29.5, 0, 1.5, 29.5, 30, 30.5,
        // 40); binomial()$mu.eta(e): the same doubles from the same operations.
        let eta = [-40.0, -30.5, -30.0, -29.5, 0.0, 1.5, 29.5, 30.0, 30.5, 40.0];
        let r = [
            2.2204460492503131e-16,
            2.2204460492503131e-16,
            9.3576229688384254e-14,
            1.5428112031914116e-13,
            0.25,
            1.4914645207033286e-01,
            1.5428112031914119e-13,
            9.3576229688384229e-14,
            2.2204460492503131e-16,
            2.2204460492503131e-16,
        ];
        for (e, want) in eta.iter().zip(r) {
            assert_eq!(Link::Logit.mu_eta(*e), want, "at {e}");
        }
        // R: y <- c(0,1,0,1,1,0); mu <- c(.2,.7,.5,.9,.35,.05); wt <- c(1,2,3,.5,1.5,2);
        // sum(binomial()$dev.resids(y, mu, wt)) is 9.4918700284470816.
        let y = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0];
        let mu = [0.2, 0.7, 0.5, 0.9, 0.35, 0.05];
        let wt = [1.0, 2.0, 3.0, 0.5, 1.5, 2.0];
        let dev: f64 = (0..6)
            .map(|i| Family::Binomial.deviance_residual(y[i], mu[i], wt[i]))
            .sum();
        assert!(rel(dev, 9.491_870_028_447_081_6) < 1e-14);
    }

    #[test]
    fn deviance_residuals() {
        // Binomial with y in {0, 1}: -2 w log(mu) or -2 w log(1 - mu).
        let d = Family::Binomial.deviance_residual(1.0, 0.25, 2.0);
        assert!(rel(d, -4.0 * 0.25f64.ln()) < 1e-15);
        assert_eq!(Family::Poisson.deviance_residual(0.0, 2.0, 1.5), 6.0);
        assert!(Family::Gamma.deviance_residual(2.0, 2.0, 1.0).abs() < 1e-15);
    }
}
