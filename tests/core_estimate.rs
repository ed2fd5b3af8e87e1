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
        fpc: vec![],
        weights: Some(weights),
        nest: false,
        lonely_psu: LonelyPsu::Fail,
        adjust_domain_lonely: false,
        pps: None,
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
                        let fbar = (prob[i] + prob[j]) / 2.0;
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
    assert!(matches!(err, CoreError::Value(ref m) if m.contains("missing at row 1")));
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
