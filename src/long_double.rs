//! R's sums in `long double`: `sum`, `cumsum` and `mean` of doubles accumulate in a C
//! `LDOUBLE`, on x86-64 the x87 80-bit format (64-bit significand).  Where a survey
//! estimate lands on a step of a weighted distribution function (a quantile), the last
//! bit of such a sum decides which data value it is, so the arithmetic is emulated here
//! bit for bit: exact operations rounded to 64 significant bits, to nearest, ties to
//! even.  The exponent is unbounded (x87's 15 bits are never reached by survey weights).

use std::cmp::Ordering;
use std::ops::{Add, Div, Sub};

/// A number sig * 2^exp with a 64-bit significand (top bit set; 0 for zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongDouble {
    negative: bool,
    sig: u64,
    exp: i32,
}

/// Guard bits below the significand while adding: enough that a rounding decision never
/// reads the sticky bit.
const GUARD: u32 = 62;

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble {
        negative: false,
        sig: 0,
        exp: 0,
    };

    /// A finite double, exactly.
    pub fn from_f64(x: f64) -> LongDouble {
        if x == 0.0 {
            return Self::ZERO;
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1 << 52) - 1);
        let (m, e) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | 1 << 52, biased - 1075)
        };
        let lz = m.leading_zeros();
        LongDouble {
            negative: bits >> 63 == 1,
            sig: m << lz,
            exp: e - lz as i32,
        }
    }

    /// Rounded to the nearest double (ties to even), as C's `(double)` cast.
    #[inline]
    pub fn to_f64(self) -> f64 {
        if self.sig == 0 {
            return 0.0;
        }
        let top = self.exp + 63;
        if (-1022..1023).contains(&top) {
            // A normal double (a carry to 2^53 moves the exponent up by one, still normal).
            let mut kept = self.sig >> 11;
            let rem = self.sig & 0x7ff;
            if rem > 0x400 || (rem == 0x400 && kept & 1 == 1) {
                kept += 1;
            }
            let exponent = (top + 1023) as u64 + (kept >> 53);
            let bits = (u64::from(self.negative) << 63) | exponent << 52 | (kept & ((1 << 52) - 1));
            return f64::from_bits(bits);
        }
        self.to_f64_extreme()
    }

    /// `to_f64` near or beyond the ends of the double range (subnormal, infinite).
    fn to_f64_extreme(self) -> f64 {
        let sign = if self.negative { -1.0 } else { 1.0 };
        // Unbiased exponent of the leading bit; below -1022 the double is subnormal and
        // keeps fewer bits.
        let top = self.exp + 63;
        if top > 1023 {
            return sign * f64::INFINITY;
        }
        let drop = 11 + (-1022 - top).max(0) as u32;
        if drop > 65 {
            return sign * 0.0;
        }
        let m = u128::from(self.sig);
        let rem = m & ((1u128 << drop) - 1);
        let half = 1u128 << (drop - 1);
        let mut kept = (m >> drop) as u64;
        if rem > half || (rem == half && kept & 1 == 1) {
            kept += 1; // at most 2^53: still exact as a double
        }
        let scale = self.exp + drop as i32;
        // A carry to 2^1024 (the largest finite double rounded up) is infinite.
        if scale + (64 - kept.leading_zeros() as i32) > 1024 {
            return sign * f64::INFINITY;
        }
        sign * kept as f64 * pow2(scale)
    }

    fn magnitude_cmp(&self, other: &Self) -> Ordering {
        match (self.sig == 0, other.sig == 0) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => (self.exp, self.sig).cmp(&(other.exp, other.sig)),
        }
    }

    /// m * 2^exp (m with a sticky lowest bit) rounded to 64 significant bits.
    fn round(negative: bool, m: u128, exp: i32) -> LongDouble {
        if m == 0 {
            return Self::ZERO;
        }
        let lead = 127 - m.leading_zeros() as i32;
        if lead <= 63 {
            let shift = (63 - lead) as u32;
            return LongDouble {
                negative,
                sig: (m << shift) as u64,
                exp: exp - shift as i32,
            };
        }
        let drop = (lead - 63) as u32;
        let rem = m & ((1u128 << drop) - 1);
        let half = 1u128 << (drop - 1);
        let mut sig = (m >> drop) as u64;
        let mut exp = exp + drop as i32;
        if rem > half || (rem == half && sig & 1 == 1) {
            sig = sig.wrapping_add(1);
            if sig == 0 {
                sig = 1 << 63;
                exp += 1;
            }
        }
        LongDouble { negative, sig, exp }
    }

    /// self + x for a finite double.  The common step of a cumulative sum of weights
    /// (both positive, x no larger in exponent) in u64 arithmetic; otherwise the general sum.
    #[inline]
    #[must_use]
    pub fn add_f64(self, x: f64) -> LongDouble {
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        // x = m 2^f with m in [2^63, 2^64), as the significand here.
        let m = ((bits & ((1 << 52) - 1)) | 1 << 52) << 11;
        let d = self.exp - (biased - 1086);
        if self.negative || bits >> 63 == 1 || biased == 0 || self.sig == 0 || !(0..64).contains(&d)
        {
            return self + LongDouble::from_f64(x);
        }
        let d = d as u32;
        // The bits of x below the last bit kept: the rounding remainder, out of 2^d.
        let (aligned, rem, half) = if d == 0 {
            (m, 0, 1)
        } else {
            (m >> d, m & ((1 << d) - 1), 1 << (d - 1))
        };
        let (sum, carry) = self.sig.overflowing_add(aligned);
        let (mut sig, mut exp, round_up) = if carry {
            // 2^64 + sum: one more bit drops, the remainder only as "some".
            let sig = 1 << 63 | sum >> 1;
            (
                sig,
                self.exp + 1,
                sum & 1 == 1 && (rem != 0 || sig & 1 == 1),
            )
        } else {
            (sum, self.exp, rem > half || (rem == half && sum & 1 == 1))
        };
        if round_up {
            sig = sig.wrapping_add(1);
            if sig == 0 {
                sig = 1 << 63;
                exp += 1;
            }
        }
        LongDouble {
            negative: false,
            sig,
            exp,
        }
    }
}

/// Exact sum rounded to 64 significant bits (x87 `fadd`).
impl Add for LongDouble {
    type Output = LongDouble;

    fn add(self, other: LongDouble) -> LongDouble {
        if other.sig == 0 {
            return self;
        }
        if self.sig == 0 {
            return other;
        }
        let (big, small) = if self.magnitude_cmp(&other) == Ordering::Less {
            (other, self)
        } else {
            (self, other)
        };
        let a = u128::from(big.sig) << GUARD;
        let s = u128::from(small.sig) << GUARD;
        let shift = (big.exp - small.exp) as u32;
        // Bits shifted out only matter as "some": a sticky lowest bit stands for them.
        let b = if shift > 125 {
            1
        } else {
            (s >> shift) | u128::from(s & ((1u128 << shift) - 1) != 0)
        };
        let m = if big.negative == small.negative {
            a + b
        } else {
            a - b
        };
        Self::round(big.negative, m, big.exp - GUARD as i32)
    }
}

impl Sub for LongDouble {
    type Output = LongDouble;

    fn sub(self, other: LongDouble) -> LongDouble {
        self + LongDouble {
            negative: !other.negative,
            ..other
        }
    }
}

/// Exact quotient rounded to 64 significant bits (x87 `fdiv`).
impl Div for LongDouble {
    type Output = LongDouble;

    fn div(self, other: LongDouble) -> LongDouble {
        if self.sig == 0 {
            return Self::ZERO;
        }
        let d = u128::from(other.sig);
        // Both significands lie in [2^63, 2^64): the quotient of (a 2^64) / b has 64 or 65
        // bits; three more quotient bits and a sticky remainder bit decide the rounding.
        let n = u128::from(self.sig) << 64;
        let (q, r) = (n / d, n % d);
        let (q2, r2) = ((r << 3) / d, (r << 3) % d);
        let m = (((q << 3) | q2) << 1) | u128::from(r2 != 0);
        Self::round(
            self.negative != other.negative,
            m,
            self.exp - other.exp - 68,
        )
    }
}

/// 2^k as a double, for k from -1074 to 1023.
fn pow2(k: i32) -> f64 {
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

/// R's `sum(x)`: accumulated left to right in long double, rounded once.  Non-finite
/// values give what the x87 sum gives (an infinity or NaN), through plain doubles.
pub fn r_sum(x: impl IntoIterator<Item = f64>) -> f64 {
    let mut s = RSum::ZERO;
    for v in x {
        s.add(v);
    }
    s.value()
}

/// R's `sum` kept open, to add the rows of several sums in one pass over them.
#[derive(Clone, Copy, Debug)]
pub struct RSum {
    sum: LongDouble,
    special: f64,
}

impl RSum {
    pub const ZERO: RSum = RSum {
        sum: LongDouble::ZERO,
        special: 0.0,
    };

    pub fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.sum = self.sum.add_f64(v);
        } else {
            self.special += v;
        }
    }

    pub fn value(self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            self.special
        } else {
            self.sum.to_f64()
        }
    }
}

/// R's `cumsum(x)` into `out`: a long-double running sum, each step rounded to double.
/// For finite x (weights).
pub fn r_cumsum(x: impl IntoIterator<Item = f64>, out: &mut Vec<f64>) {
    out.clear();
    let mut s = LongDouble::ZERO;
    for v in x {
        s = s.add_f64(v);
        out.push(s.to_f64());
    }
}

/// R's `mean(x)` of doubles: the long-double sum over n, then one refining pass adding
/// the mean of the deviations (R's summary.c).
pub fn r_mean(x: &[f64]) -> f64 {
    if x.iter().any(|v| !v.is_finite()) {
        return x.iter().sum::<f64>() / x.len() as f64;
    }
    let n = LongDouble::from_f64(x.len() as f64);
    let s = x
        .iter()
        .fold(LongDouble::ZERO, |s, &v| s + LongDouble::from_f64(v))
        / n;
    if !s.to_f64().is_finite() {
        return s.to_f64();
    }
    let t = x
        .iter()
        .fold(LongDouble::ZERO, |t, &v| t + (LongDouble::from_f64(v) - s));
    (s + t / n).to_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_round_trip() {
        for x in [
            1.0,
            -2.5,
            0.1,
            1e300,
            -1e-300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(LongDouble::from_f64(x).to_f64(), x);
        }
    }

    #[test]
    fn a_long_double_keeps_eleven_more_bits() {
        // 1 + 2^-60 is exact in 64 bits; adding -1 leaves 2^-60, which a double sum loses.
        let one = LongDouble::from_f64(1.0);
        let tiny = LongDouble::from_f64(2f64.powi(-60));
        assert_eq!((one + tiny - one).to_f64(), 2f64.powi(-60));
        assert_eq!(r_sum([1.0, 2f64.powi(-60), -1.0]), 2f64.powi(-60));
        // 2^-64 is below the last bit of 1 + ...: lost, as on the x87 (ties to even).
        assert_eq!(r_sum([1.0, 2f64.powi(-64), -1.0]), 0.0);
        // Just above half the last bit rounds up: 1 + 2^-63 survives.
        assert_eq!(
            r_sum([1.0, 2f64.powi(-64) + 2f64.powi(-100), -1.0]),
            2f64.powi(-63)
        );
    }

    #[test]
    fn the_last_rounding_is_to_double() {
        // 0.1 + 0.2 is exact in long double: R's sum(c(0.1, 0.2)) rounds it to the double
        // sum 0.30000000000000004, but sum(c(0.1, 0.2, -0.3)) is 2^-55 (2.775558e-17),
        // where doubles give 2^-54.
        assert_eq!(r_sum([0.1, 0.2]), 0.1 + 0.2);
        assert_eq!(r_sum([0.1, 0.2, -0.3]), 2f64.powi(-55));
        let mut out = Vec::new();
        r_cumsum([0.1, 0.2, -0.3], &mut out);
        assert_eq!(out, vec![0.1, 0.1 + 0.2, 2f64.powi(-55)]);
    }

    #[test]
    fn division_rounds_to_nearest() {
        let third = LongDouble::from_f64(1.0) / LongDouble::from_f64(3.0);
        // 1/3 in 64 bits: 0xAAAA...AAAB x 2^-65 (the bits after the 64th are 1010..., so
        // the last kept bit rounds up).
        assert_eq!(third.sig, 0xAAAA_AAAA_AAAA_AAAB);
        assert_eq!(third.exp, -65);
        assert_eq!(third.to_f64(), 1.0 / 3.0);
    }

    #[test]
    fn the_fast_step_is_the_general_one() {
        // Weights of every size against sums of every size, ties to even included.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Ties to even at 2^63 (last bit 1) and a carry out of the top bit.
        let big = LongDouble::from_f64(2f64.powi(63));
        let all_ones = LongDouble {
            negative: false,
            sig: u64::MAX,
            exp: 0,
        };
        for (s, x) in [
            (big, 0.5),
            (big, 1.5),
            (big, 2.5),
            (all_ones, 1.0),
            (all_ones, 0.5),
        ] {
            assert_eq!(s.add_f64(x), s + LongDouble::from_f64(x));
        }
        assert_eq!(big.add_f64(0.5), big);
        assert_eq!(big.add_f64(1.5).sig, (1 << 63) + 2);
        for _ in 0..200_000 {
            let scale = 2f64.powi((next() % 80) as i32 - 40);
            let x = (next() >> 11) as f64 / (1u64 << 53) as f64 * scale;
            let x = if next() % 4 == 0 { x.round() } else { x };
            let mut s = LongDouble::from_f64((next() >> 11) as f64 / 7.0);
            for _ in 0..(next() % 3) {
                s = s + LongDouble::from_f64((next() >> 20) as f64 * 3.0);
            }
            let general = s + LongDouble::from_f64(x);
            assert_eq!(s.add_f64(x), general);
            assert_eq!(general.to_f64(), general.to_f64_extreme());
        }
    }

    #[test]
    fn mean_as_r() {
        // R: mean(c(1, 2, 4)) is 7/3 to the double; mean of a constant is the constant.
        assert_eq!(r_mean(&[1.0, 2.0, 4.0]), 7.0 / 3.0);
        assert_eq!(r_mean(&[0.1; 10]), 0.1);
        assert_eq!(r_mean(&[1.0, f64::INFINITY]), f64::INFINITY);
    }
}
