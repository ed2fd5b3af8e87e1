//! Interruption spells from person-year contribution records: per person, the runs of
//! years without a contribution after the first paid year, their number and length,
//! the interruption density and re-entry.

use crate::error::{CoreError, Result};

/// Person-year contribution records, one entry per record.  Persons may come in any
/// order; a person's own records must be in time order.
pub struct Records<'a> {
    /// Person code of each record, `0..n_persons`.
    pub person: &'a [u32],
    /// Calendar year of each record.
    pub year: &'a [i32],
    /// Whether a contribution was paid that year.
    pub contributed: &'a [bool],
}

/// One interruption: a maximal run of years without a contribution after a paid year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spell {
    pub person: u32,
    /// First year without a contribution.
    pub start: i32,
    /// Length of the run in years.
    pub years: u32,
    /// The person paid again after the run; otherwise it lasts to the survey year.
    pub reentered: bool,
}

/// Per-person summaries (indexed by person code) and every spell, by person and time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histories {
    pub first_contribution: Vec<Option<i32>>,
    pub paid_years: Vec<u32>,
    pub n_interruptions: Vec<u32>,
    pub years_interrupted: Vec<u32>,
    /// Years from the first-job year to the survey year, both counted.
    pub years_since_first_job: Vec<u32>,
    /// Years interrupted / years since first job.
    pub density: Vec<f64>,
    pub n_reentries: Vec<u32>,
    pub spells: Vec<Spell>,
}

fn refuse(person: usize, reason: String) -> CoreError {
    CoreError::History {
        person: person as u32,
        reason,
    }
}

/// The first-job year of each person as a whole year, or why it is unusable.
fn first_job_years(first_job: &[f64], survey_year: i32) -> Result<Vec<i32>> {
    first_job
        .iter()
        .enumerate()
        .map(|(p, &f)| {
            if f.is_nan() {
                Err(refuse(p, "has no first-job year".into()))
            } else if f.fract() != 0.0 || !f.is_finite() {
                Err(refuse(
                    p,
                    format!("first-job year {f} is not a calendar year"),
                ))
            } else if f > f64::from(survey_year) {
                Err(refuse(
                    p,
                    format!("first-job year {f} is after the survey year {survey_year}"),
                ))
            } else {
                Ok(f as i32)
            }
        })
        .collect()
}

/// Interruption spells of every person, from records over first job ..= `survey_year`.
///
/// A year without a record counts as a year without a contribution.  An interruption
/// is a maximal run of such years after the first paid year (years before it are not
/// yet insured, not interrupted); it ends with re-entry when the person pays again,
/// otherwise it lasts to the survey year.  Density is the years interrupted over the
/// years since the first job (first-job year and survey year both counted).
///
/// Refused, naming the person: a missing or non-integer first-job year, a year
/// recorded twice, a year recorded after a later one, a record before the first job
/// or after the survey year.
pub fn interruption_spells(
    records: &Records,
    first_job: &[f64],
    survey_year: i32,
) -> Result<Histories> {
    let n = records.person.len();
    if records.year.len() != n || records.contributed.len() != n {
        return Err(CoreError::Shape(format!(
            "contribution records: {n} persons, {} years and {} contribution flags",
            records.year.len(),
            records.contributed.len()
        )));
    }
    let first_job = first_job_years(first_job, survey_year)?;
    let n_persons = first_job.len();
    if let Some(i) = records.person.iter().position(|&p| p as usize >= n_persons) {
        return Err(CoreError::Shape(format!(
            "record {i} names person code {} but there are {n_persons} persons",
            records.person[i]
        )));
    }
    // Records grouped by person with a stable counting sort, so each person's own
    // order is kept and out-of-order years can be found.
    let mut start = vec![0usize; n_persons + 1];
    for &p in records.person {
        start[p as usize + 1] += 1;
    }
    for p in 0..n_persons {
        start[p + 1] += start[p];
    }
    let mut next = start.clone();
    let mut order = vec![0usize; n];
    for (i, &p) in records.person.iter().enumerate() {
        order[next[p as usize]] = i;
        next[p as usize] += 1;
    }

    let mut out = Histories {
        first_contribution: vec![None; n_persons],
        paid_years: vec![0; n_persons],
        n_interruptions: vec![0; n_persons],
        years_interrupted: vec![0; n_persons],
        years_since_first_job: vec![0; n_persons],
        density: vec![0.0; n_persons],
        n_reentries: vec![0; n_persons],
        spells: Vec::new(),
    };
    for (p, &first) in first_job.iter().enumerate() {
        let mut previous: Option<i32> = None;
        let mut last_paid: Option<i32> = None;
        for &i in &order[start[p]..start[p + 1]] {
            let year = records.year[i];
            match previous {
                Some(y) if year == y => {
                    return Err(refuse(p, format!("year {year} is recorded twice")))
                }
                Some(y) if year < y => {
                    return Err(refuse(
                        p,
                        format!(
                            "year {year} is recorded after year {y}: records must be in time order"
                        ),
                    ))
                }
                _ => {}
            }
            if year < first {
                return Err(refuse(
                    p,
                    format!("a record for {year} precedes the first job in {first}"),
                ));
            }
            if year > survey_year {
                return Err(refuse(
                    p,
                    format!("a record for {year} is after the survey year {survey_year}"),
                ));
            }
            previous = Some(year);
            if !records.contributed[i] {
                continue;
            }
            match last_paid {
                Some(last) if year > last + 1 => out.spells.push(Spell {
                    person: p as u32,
                    start: last + 1,
                    years: (year - last - 1) as u32,
                    reentered: true,
                }),
                None => out.first_contribution[p] = Some(year),
                _ => {}
            }
            last_paid = Some(year);
            out.paid_years[p] += 1;
        }
        if let Some(last) = last_paid.filter(|&last| last < survey_year) {
            out.spells.push(Spell {
                person: p as u32,
                start: last + 1,
                years: (survey_year - last) as u32,
                reentered: false,
            });
        }
        out.years_since_first_job[p] = (survey_year - first + 1) as u32;
    }
    for spell in &out.spells {
        let p = spell.person as usize;
        out.n_interruptions[p] += 1;
        out.years_interrupted[p] += spell.years;
        out.n_reentries[p] += u32::from(spell.reentered);
    }
    for p in 0..n_persons {
        out.density[p] =
            f64::from(out.years_interrupted[p]) / f64::from(out.years_since_first_job[p]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(person: &[u32], year: &[i32], paid: &[bool], first: &[f64]) -> Result<Histories> {
        let records = Records {
            person,
            year,
            contributed: paid,
        };
        interruption_spells(&records, first, 2024)
    }

    #[test]
    fn spells_reentry_and_density() {
        // Person 0: first job 2015, pays 2016-17, gap 2018-19, pays 2020, stops 2021-.
        // Person 1 (records interleaved with person 0's): pays every year from 2020.
        // Person 2: no records at all.
        let person = [0, 0, 1, 0, 0, 1, 1, 1, 1, 0];
        let year = [2016, 2017, 2020, 2018, 2020, 2021, 2022, 2023, 2024, 2021];
        let paid = [true, true, true, false, true, true, true, true, true, false];
        let h = run(&person, &year, &paid, &[2015.0, 2020.0, 2010.0]).unwrap();
        assert_eq!(
            h.spells,
            vec![
                Spell {
                    person: 0,
                    start: 2018,
                    years: 2,
                    reentered: true
                },
                Spell {
                    person: 0,
                    start: 2021,
                    years: 4,
                    reentered: false
                },
            ]
        );
        assert_eq!(h.first_contribution, vec![Some(2016), Some(2020), None]);
        assert_eq!(h.paid_years, vec![3, 5, 0]);
        assert_eq!(h.n_interruptions, vec![2, 0, 0]);
        assert_eq!(h.years_interrupted, vec![6, 0, 0]);
        assert_eq!(h.n_reentries, vec![1, 0, 0]);
        assert_eq!(h.years_since_first_job, vec![10, 5, 15]);
        assert_eq!(h.density, vec![0.6, 0.0, 0.0]);
    }

    #[test]
    fn missing_years_are_unpaid() {
        let h = run(&[0, 0], &[2010, 2014], &[true, true], &[2010.0]).unwrap();
        assert_eq!(
            h.spells[0],
            Spell {
                person: 0,
                start: 2011,
                years: 3,
                reentered: true
            }
        );
        assert_eq!(
            h.spells[1],
            Spell {
                person: 0,
                start: 2015,
                years: 10,
                reentered: false
            }
        );
    }

    fn reason(err: CoreError) -> (u32, String) {
        match err {
            CoreError::History { person, reason } => (person, reason),
            other => panic!("expected a history error, got {other:?}"),
        }
    }

    #[test]
    fn bad_histories_name_the_person() {
        let first = [2000.0, 2000.0];
        let dup = run(&[0, 1, 1], &[2001, 2003, 2003], &[true; 3], &first).unwrap_err();
        assert_eq!(reason(dup), (1, "year 2003 is recorded twice".into()));
        let back = run(&[1, 1], &[2005, 2004], &[true; 2], &first).unwrap_err();
        assert!(reason(back).1.contains("after year 2005"));
        let early = run(&[0], &[1999], &[true], &first).unwrap_err();
        assert!(reason(early).1.contains("precedes the first job in 2000"));
        let late = run(&[0], &[2025], &[true], &first).unwrap_err();
        assert!(reason(late).1.contains("after the survey year"));
        let none = run(&[0], &[2001], &[true], &[2000.0, f64::NAN]).unwrap_err();
        assert_eq!(reason(none), (1, "has no first-job year".into()));
        let half = run(&[], &[], &[], &[2000.5]).unwrap_err();
        assert!(reason(half).1.contains("not a calendar year"));
    }

    #[test]
    fn bad_shapes() {
        assert!(matches!(
            run(&[0], &[2001, 2002], &[true], &[2000.0]),
            Err(CoreError::Shape(_))
        ));
        assert!(matches!(
            run(&[3], &[2001], &[true], &[2000.0]),
            Err(CoreError::Shape(_))
        ));
    }
}
