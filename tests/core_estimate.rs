//! Integration tests of the pure core against hand calculations (no Python).

use sscoverage::design::{Design, DesignSpec, LonelyPsu, PpsMethod, PpsVariance};
use sscoverage::estimate::{estimate_by_domain, Estimator, Outcome, OUTSIDE};
use sscoverage::CoreError;

fn spec<'a>(
    n: usize,
    clusters: Option<&'a [u32]>,
    strata: Option<&'a [u32]>,
    weights: &'a [f64],
) -> DesignSpec<'a> {
    DesignSpec {
        n_rows: n,
        clusters: vec![clusters],
        strata: strata.into_iter().collect(),
        ..DesignSpec::weighted(weights)
    }
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} != {b}");
}

#[test]
fn stratified_total_by_hand() {
    // Two strata of two PSUs (one row each): V = sum_h n_h/(n_h-1) sum_i (z_hi - zbar_h)^2.
    let y = [1.0, 3.0, 10.0, 14.0];
    let w = [2.0, 2.0, 1.0, 1.0];
    let strata = [0, 0, 1, 1];
    let design = Design::new(&spec(4, None, Some(&strata), &w)).unwrap();
    let dom = [0u32; 4];
    let res = estimate_by_domain(
        &design,
        Estimator::Total,
        &[Outcome::Numeric(&y)],
        &dom,
        1,
        false,
    )
    .unwrap();
    close(res.estimate[0], 2.0 + 6.0 + 10.0 + 14.0);
    // stratum 0: z = 2, 6 (mean 4) -> 2 * 8 = 16; stratum 1: z = 10, 14 (mean 12) -> 2 * 8 = 16.
    close(res.vcov[0], 32.0);
    assert_eq!(design.degf, 2);
}

#[test]
fn domain_keeps_every_psu() {
    // The domain holds rows 0 and 2 only; PSUs 1 and 3 count with zero totals.
    let y = [1.0, 3.0, 10.0, 14.0];
    let w = [1.0; 4];
    let design = Design::new(&spec(4, None, None, &w)).unwrap();
    let dom = [0, OUTSIDE, 0, OUTSIDE];
    let res = estimate_by_domain(
        &design,
        Estimator::Total,
        &[Outcome::Numeric(&y)],
        &dom,
        1,
        false,
    )
    .unwrap();
    close(res.estimate[0], 11.0);
    // z = 1, 0, 10, 0; mean 2.75; n/(n-1) sum (z - mean)^2
    let z = [1.0f64, 0.0, 10.0, 0.0];
    let m = 2.75;
    close(
        res.vcov[0],
        4.0 / 3.0 * z.iter().map(|v| (v - m).powi(2)).sum::<f64>(),
    );
    assert_eq!(res.n_rows[0], 2.0);
}

#[test]
fn lonely_psu_rules() {
    let y = [1.0, 3.0, 10.0];
    let w = [1.0; 3];
    let strata = [0, 0, 1];
    let dom = [0u32; 3];
    let run = |rule| {
        let mut s = spec(3, None, Some(&strata), &w);
        s.lonely_psu = rule;
        let d = Design::new(&s)?;
        estimate_by_domain(
            &d,
            Estimator::Total,
            &[Outcome::Numeric(&y)],
            &dom,
            1,
            false,
        )
        .map(|r| r.vcov[0])
    };
    assert_eq!(
        run(LonelyPsu::Fail),
        Err(CoreError::LonelyPsu {
            stratum: 1,
            stage: 1
        })
    );
    // Stratum 0 alone: n/(n-1) = 2 times ((1-2)^2 + (3-2)^2) = 4.
    close(run(LonelyPsu::Remove).unwrap(), 4.0);
    close(run(LonelyPsu::Certainty).unwrap(), 4.0);
    close(run(LonelyPsu::Adjust).unwrap(), 4.0 + 100.0); // the lonely total, not centred
    close(run(LonelyPsu::Average).unwrap(), 4.0 * 2.0); // 2 strata, 1 usable: times 2/1
}

#[test]
fn certainty_stratum_adds_nothing() {
    // fpc equal to the sample size: a completely sampled stratum.
    let y = [1.0, 3.0, 10.0, 12.0];
    let w = [1.0; 4];
    let strata = [0, 0, 1, 1];
    let fpc = [2.0, 2.0, 4.0, 4.0];
    let mut s = spec(4, None, Some(&strata), &w);
    s.fpc = vec![&fpc];
    let d = Design::new(&s).unwrap();
    let res = estimate_by_domain(
        &d,
        Estimator::Total,
        &[Outcome::Numeric(&y)],
        &[0; 4],
        1,
        false,
    )
    .unwrap();
    // stratum 1 only: (1 - 2/4) * 2 * ((10-11)^2 + (12-11)^2) = 2
    close(res.vcov[0], 2.0);
}

/// Build D of Overton's or Hartley-Rao's approximation entry by entry, as R's
/// overton2Dcheck / HRDcheck do, and check the one-pass kernel gives x'Dx.
fn dense_reference(prob: &[f64], strata: &[u32], hr_p2bar: Option<f64>) -> Vec<f64> {
    let n = prob.len();
    let mut d = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let nh = strata.iter().filter(|&&s| s == strata[i]).count() as f64;
            d[i * n + j] = if i == j {
                1.0 - prob[i]
            } else if strata[i] != strata[j] {
                0.0
            } else {
                match hr_p2bar {
                    None => {
                        let fbar = f64::midpoint(prob[i], prob[j]);
                        if fbar == 1.0 {
                            0.0
                        } else {
                            1.0 - (nh - fbar) / (nh - 1.0)
                        }
                    }
                    Some(p2) => {
                        let fbar = prob[i] + prob[j];
                        if fbar == 1.0 {
                            0.0
                        } else {
                            1.0 - (nh - fbar + p2) / (nh - 1.0)
                        }
                    }
                }
            };
        }
    }
    d
}

#[test]
fn pps_one_pass_kernels_equal_the_dense_quadratic_form() {
    let prob = [0.1, 0.25, 0.75, 0.4, 0.3, 0.6, 0.2];
    let strata = [0, 0, 0, 0, 1, 1, 1];
    let y = [3.0, -1.0, 4.0, 1.5, 9.0, 2.0, -6.0];
    let n = prob.len();
    let weights: Vec<f64> = prob.iter().map(|p| 1.0 / p).collect();
    let fpc: Vec<f64> = prob.to_vec();
    for (method, p2) in [
        (PpsMethod::Overton, None),
        (PpsMethod::HartleyRao { psum: Some(0.2) }, Some(0.2)),
    ] {
        for variance in [PpsVariance::HorvitzThompson, PpsVariance::YatesGrundy] {
            let mut s = spec(n, None, Some(&strata), &weights);
            s.fpc = vec![&fpc];
            s.pps = Some((method.clone(), variance));
            let d = Design::new(&s).unwrap();
            let res = estimate_by_domain(
                &d,
                Estimator::Total,
                &[Outcome::Numeric(&y)],
                &vec![0; n],
                1,
                false,
            )
            .unwrap();
            let dm = dense_reference(&prob, &strata, p2);
            let x: Vec<f64> = y.iter().zip(&weights).map(|(a, b)| a * b).collect();
            let mut want = 0.0;
            for i in 0..n {
                for j in 0..n {
                    want += x[i] * dm[i * n + j] * x[j];
                }
            }
            if variance == PpsVariance::YatesGrundy {
                for j in 0..n {
                    let colsum: f64 = (0..n).map(|i| dm[i * n + j]).sum();
                    want -= colsum * x[j] * x[j];
                }
            }
            close(res.vcov[0], want);
        }
    }
}

#[test]
fn nan_in_a_used_row_is_an_error_not_a_nan() {
    let y = [1.0, f64::NAN, 3.0];
    let w = [1.0; 3];
    let d = Design::new(&spec(3, None, None, &w)).unwrap();
    let err = estimate_by_domain(
        &d,
        Estimator::Mean,
        &[Outcome::Numeric(&y)],
        &[0; 3],
        1,
        false,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        CoreError::MissingOutcome { outcome: 0, row: 1 }
    ));
    // Outside the domain the value is never read.
    let ok = estimate_by_domain(
        &d,
        Estimator::Mean,
        &[Outcome::Numeric(&y)],
        &[0, OUTSIDE, 0],
        1,
        false,
    )
    .unwrap();
    close(ok.estimate[0], 2.0);
}

/// PSU codes, stratum codes, weights, an outcome and integer domain labels.
type Sample = (Vec<u32>, Vec<u32>, Vec<f64>, Vec<f64>, Vec<i64>);

/// Rows of a stratified cluster sample in random order (a small xorshift generator),
/// enough of them for the pass to run in several chunks.
fn random_sample(n: usize) -> Sample {
    let mut s: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let psu: Vec<u32> = (0..n).map(|_| (next() % 60) as u32).collect();
    let strata: Vec<u32> = psu.iter().map(|&p| p / 6).collect();
    let w: Vec<f64> = psu.iter().map(|&p| 1.0 + f64::from(p) * 0.37).collect();
    let y: Vec<f64> = (0..n).map(|_| (next() % 1000) as f64 / 7.0).collect();
    // Labels -3..=4 with no row at 1: a gap in the range.
    let labels: Vec<i64> = (0..n)
        .map(|_| match (next() % 7) as i64 - 3 {
            1 => 4,
            v => v,
        })
        .collect();
    (psu, strata, w, y, labels)
}

#[test]
fn labels_give_the_same_estimates_as_codes() {
    use sscoverage::codes::dense_codes;
    use sscoverage::estimate::estimate_by_labels;
    let n = 400_000;
    let (psu, strata, w, y, labels) = random_sample(n);
    let design = Design::new(&spec(n, Some(&psu), Some(&strata), &w)).unwrap();
    let (codes, distinct) = dense_codes(&labels);
    assert_eq!(distinct, vec![-3, -2, -1, 0, 2, 3, 4]);
    let outcomes = [Outcome::Numeric(&y)];
    let by_codes =
        estimate_by_domain(&design, Estimator::Mean, &outcomes, &codes, 7, false).unwrap();
    let by_labels =
        estimate_by_labels(&design, Estimator::Mean, &outcomes, &labels, -3, 8, false).unwrap();
    // Slot 4 (label 1) has no rows; the others are the coded domains, to the last bit.
    assert_eq!(by_labels.n_rows[4], 0.0);
    let slots = [0, 1, 2, 3, 5, 6, 7];
    for (d, &slot) in slots.iter().enumerate() {
        assert_eq!(
            by_labels.estimate[slot].to_bits(),
            by_codes.estimate[d].to_bits()
        );
        assert_eq!(by_labels.vcov[slot].to_bits(), by_codes.vcov[d].to_bits());
        assert_eq!(by_labels.weight_sum[slot], by_codes.weight_sum[d]);
    }
    // A label outside the range is an error, as a code out of range is.
    assert!(
        estimate_by_labels(&design, Estimator::Mean, &outcomes, &labels, -2, 8, false).is_err()
    );
}

#[test]
fn one_numeric_outcome_sums_as_the_general_pass() {
    // deff=true takes the general pass (it also sums squares); the estimates and their
    // variances must agree with the one-outcome pass bit for bit.
    let n = 400_000;
    let (psu, strata, w, y, labels) = random_sample(n);
    let design = Design::new(&spec(n, Some(&psu), Some(&strata), &w)).unwrap();
    let mut codes: Vec<u32> = labels.iter().map(|&l| (l + 3) as u32).collect();
    codes[17] = OUTSIDE;
    let outcomes = [Outcome::Numeric(&y)];
    for estimator in [Estimator::Mean, Estimator::Total] {
        let fast = estimate_by_domain(&design, estimator, &outcomes, &codes, 8, false).unwrap();
        let general = estimate_by_domain(&design, estimator, &outcomes, &codes, 8, true).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast.estimate), bits(&general.estimate));
        assert_eq!(bits(&fast.vcov), bits(&general.vcov));
        assert_eq!(fast.n_rows, general.n_rows);
    }
    let mut with_nan = y.clone();
    with_nan[n - 5] = f64::NAN;
    let outcomes = [Outcome::Numeric(&with_nan)];
    let err =
        estimate_by_domain(&design, Estimator::Mean, &outcomes, &codes, 8, false).unwrap_err();
    assert!(err.to_string().contains("outcome #0 is missing"), "{err}");
}

#[test]
fn owned_inputs_build_the_same_design() {
    let n = 300_000;
    let (psu, strata, w, y, _) = random_sample(n);
    let given = spec(n, Some(&psu), Some(&strata), &w);
    let copied = Design::new(&given).unwrap();
    let owned = Design::with_owned(&given, Some(w.clone()), Some(psu.clone())).unwrap();
    assert_eq!(copied.degf, owned.degf);
    assert_eq!(copied.n_units, owned.n_units);
    assert_eq!(copied.unit_of_row, owned.unit_of_row);
    assert_eq!(copied.weights, owned.weights);
    let codes = vec![0u32; n];
    let outcomes = [Outcome::Numeric(&y)];
    let a = estimate_by_domain(&copied, Estimator::Mean, &outcomes, &codes, 1, false).unwrap();
    let b = estimate_by_domain(&owned, Estimator::Mean, &outcomes, &codes, 1, false).unwrap();
    assert_eq!(a.vcov[0].to_bits(), b.vcov[0].to_bits());
    // Owned weights are checked as given ones are.
    let mut bad = w.clone();
    bad[9] = -1.0;
    assert!(Design::with_owned(&given, Some(bad), None).is_err());
    // PSU labels repeating across strata are caught by the parallel scan too.
    let mut crossed = strata.clone();
    crossed[n - 1] = (crossed[n - 1] + 1) % 10;
    let err = Design::new(&spec(n, Some(&psu), Some(&crossed), &w)).unwrap_err();
    assert!(err.to_string().contains("not nested"), "{err}");
}

#[test]
fn labels_found_by_the_pass_give_the_same_sums() {
    use sscoverage::estimate::{estimate_by_label_span, estimate_by_labels};
    let n = 400_000;
    let (psu, strata, w, y, mut labels) = random_sample(n);
    // Sorted labels: a sample of rows still finds the range.  Then labels the sample
    // misses (the first and last row only): the range is found by a pass of its own.
    labels.sort_unstable();
    let design = Design::new(&spec(n, Some(&psu), Some(&strata), &w)).unwrap();
    let outcomes = [Outcome::Numeric(&y)];
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut rare = labels.clone();
    rare[0] = -10;
    rare[n - 1] = 20;
    for (labels, lo, span) in [(&labels, -3, 8), (&rare, -10, 31)] {
        for deff in [false, true] {
            let known =
                estimate_by_labels(&design, Estimator::Mean, &outcomes, labels, lo, span, deff)
                    .unwrap();
            let (found_lo, found) = estimate_by_label_span(
                &design,
                Estimator::Mean,
                &outcomes,
                labels,
                256,
                1 << 18,
                deff,
            )
            .unwrap()
            .unwrap();
            assert_eq!(found_lo, lo);
            assert_eq!(bits(&known.estimate), bits(&found.estimate));
            assert_eq!(bits(&known.vcov), bits(&found.vcov));
            assert_eq!(known.n_rows, found.n_rows);
            assert_eq!(known.deff.map(|d| bits(&d)), found.deff.map(|d| bits(&d)));
        }
    }
    // A label as far from the offset as the codes' OUTSIDE is out of range, not skipped.
    let mut far = labels.clone();
    far[5] = -3 + i64::from(u32::MAX);
    assert!(estimate_by_labels(&design, Estimator::Mean, &outcomes, &far, -3, 8, false).is_err());
    let none = estimate_by_label_span(
        &design,
        Estimator::Mean,
        &outcomes,
        &far,
        256,
        1 << 18,
        false,
    );
    assert!(none.unwrap().is_none());
}

// A stratified two-stage sample with an fpc at both stages (tests/data/r_checks/
// core_multistage.R): strata, PSUs, population counts of PSUs and of rows per PSU.
const H: [u32; 13] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
const PSU: [u32; 13] = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4];
const SSU: [u32; 13] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const N1: [f64; 13] = [
    10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 6.0, 6.0, 6.0, 6.0, 6.0,
];
const M2: [f64; 13] = [
    6.0, 6.0, 6.0, 5.0, 5.0, 8.0, 8.0, 8.0, 4.0, 4.0, 7.0, 7.0, 7.0,
];
const Y1: [f64; 13] = [
    3.0, 5.0, 4.0, 9.0, 7.0, 2.0, 6.0, 1.0, 8.0, 4.0, 5.0, 3.0, 9.0,
];
const Y2: [f64; 13] = [
    1.5, 0.5, 2.0, 3.0, 2.5, 1.0, 0.0, 4.0, 2.0, 3.5, 1.0, 0.5, 2.0,
];

/// R's weights: 1 / ((n1 / N1) (n2 / M2)), sampled PSUs per stratum and rows per PSU.
fn two_stage_weights() -> Vec<f64> {
    let psus_in_stratum = [3.0, 2.0];
    let rows_in_psu = [3.0, 2.0, 3.0, 2.0, 3.0];
    (0..13)
        .map(|r| {
            1.0 / ((psus_in_stratum[H[r] as usize] / N1[r])
                * (rows_in_psu[PSU[r] as usize] / M2[r]))
        })
        .collect()
}

fn two_stage_design(w: &[f64]) -> Design {
    Design::new(&DesignSpec {
        clusters: vec![Some(&PSU), Some(&SSU)],
        strata: vec![&H],
        fpc: vec![&N1, &M2],
        ..DesignSpec::weighted(w)
    })
    .unwrap()
}

#[test]
fn two_stage_fpc_domain_means_match_r() {
    // R's svyby(~y1 + y2, ~dom, des, svymean, covmat=TRUE): two outcomes and two
    // domains reach every index of the stage sums; both stages' fpc enter the variance.
    let w = two_stage_weights();
    let design = two_stage_design(&w);
    let dom = [0u32, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1];
    let res = estimate_by_domain(
        &design,
        Estimator::Mean,
        &[Outcome::Numeric(&Y1), Outcome::Numeric(&Y2)],
        &dom,
        2,
        false,
    )
    .unwrap();
    let estimate = [
        3.0,
        2.1712846347607053,
        6.740425531914894,
        1.5063829787234044,
    ];
    let vcov = [
        [
            0.40623314658426846,
            -0.17527128840169506,
            -0.17527128840169506,
            0.1905350819536935,
        ],
        [
            0.44219394980942395,
            0.2999498797564841,
            0.2999498797564841,
            0.2846928145917734,
        ],
    ];
    for (got, want) in res.estimate.iter().zip(estimate) {
        close(*got, want);
    }
    for (got, want) in res.vcov.iter().zip(vcov.iter().flatten()) {
        close(*got, *want);
    }
    assert_eq!(res.vcov.len(), 8);
}

#[test]
fn ratios_of_two_numerators_by_two_denominators_match_r() {
    // R's svyratio(~y1 + y2, ~M2 + N1, des, covmat=TRUE), whose order is y1/M2, y2/M2,
    // y1/N1, y2/N1; ours is numerator-major (y1/M2, y1/N1, y2/M2, y2/N1).
    let w = two_stage_weights();
    let design = two_stage_design(&w);
    let outcomes = [
        Outcome::Numeric(&Y1),
        Outcome::Numeric(&Y2),
        Outcome::Numeric(&M2),
        Outcome::Numeric(&N1),
    ];
    let ratio = Estimator::Ratio { n_numerators: 2 };
    let res = estimate_by_domain(&design, ratio, &outcomes, &[0u32; 13], 1, false).unwrap();
    let r_estimate = [
        0.791825613079019,
        0.2851952770208901,
        0.582598235765838,
        0.20983694199411923,
    ];
    let r_vcov = [
        [
            0.038030733997561156,
            0.010122117776258927,
            0.018916083387359034,
            0.004182300524168693,
        ],
        [
            0.010122117776258927,
            0.00531665820155574,
            0.0035950971257122715,
            0.0025242757185311095,
        ],
        [
            0.018916083387359034,
            0.0035950971257122715,
            0.011052493626744197,
            0.0016131369216786007,
        ],
        [
            0.004182300524168693,
            0.0025242757185311095,
            0.0016131369216786007,
            0.0013299600840980493,
        ],
    ];
    let in_r = [0, 2, 1, 3];
    for k in 0..4 {
        close(res.estimate[k], r_estimate[in_r[k]]);
        for l in 0..4 {
            close(res.vcov[k * 4 + l], r_vcov[in_r[k]][in_r[l]]);
        }
    }
    // One numerator over the same two denominators: R's y2 rows (as many numerators as
    // denominators would hide an index that mixes the two counts).
    let ratio = Estimator::Ratio { n_numerators: 1 };
    let res = estimate_by_domain(&design, ratio, &outcomes[1..], &[0u32; 13], 1, false).unwrap();
    let in_r = [1, 3];
    for k in 0..2 {
        close(res.estimate[k], r_estimate[in_r[k]]);
        for l in 0..2 {
            close(res.vcov[k * 2 + l], r_vcov[in_r[k]][in_r[l]]);
        }
    }
}

#[test]
fn lonely_rules_in_domains_match_r() {
    // R's svyby(~y, ~dom, des, svytotal) under each survey.lonely.psu, with and without
    // survey.adjust.domain.lonely (tests/data/r_checks/core_multistage.R): a domain is a
    // subset, so a stratum without its rows neither counts nor is averaged over, and a
    // domain with one PSU of a stratum is lonely there only with the domain option.
    let strata = [0u32, 0, 0, 0, 1, 1, 1, 2, 2];
    let psu = [0u32, 0, 1, 2, 3, 3, 4, 5, 5];
    let w = [2.0, 2.0, 3.0, 1.0, 4.0, 4.0, 2.0, 5.0, 5.0];
    let y = [1.0, 4.0, 2.0, 6.0, 3.0, 5.0, 2.0, 7.0, 1.0];
    let dom = [0u32, 0, 0, 1, 1, 1, 1, 0, 0];
    let cases = [
        (LonelyPsu::Adjust, false, [1676.0, 820.0]),
        (LonelyPsu::Adjust, true, [1676.0, 837.9999999999999]),
        (LonelyPsu::Average, false, [151.99999999999997, 820.0]),
        (LonelyPsu::Average, true, [151.99999999999997, 1568.0]),
        (LonelyPsu::Remove, false, [75.99999999999999, 820.0]),
        (LonelyPsu::Remove, true, [75.99999999999999, 820.0]),
        (LonelyPsu::Certainty, false, [75.99999999999999, 820.0]),
        (LonelyPsu::Certainty, true, [75.99999999999999, 820.0]),
    ];
    for (rule, adj_dom, variance) in cases {
        let mut s = spec(9, Some(&psu), Some(&strata), &w);
        s.lonely_psu = rule;
        s.adjust_domain_lonely = adj_dom;
        let design = Design::new(&s).unwrap();
        let res = estimate_by_domain(
            &design,
            Estimator::Total,
            &[Outcome::Numeric(&y)],
            &dom,
            2,
            false,
        )
        .unwrap();
        close(res.estimate[0], 56.0);
        close(res.estimate[1], 42.0);
        close(res.vcov[0], variance[0]);
        close(res.vcov[1], variance[1]);
    }
}
