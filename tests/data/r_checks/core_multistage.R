# Expected numbers of tests/core_estimate.rs (two_stage_fpc_domain_means_match_r): a
# stratified two-stage design with an fpc at both stages, two outcomes, two domains.
#   Rscript tests/data/r_checks/core_multistage.R
suppressPackageStartupMessages(library(survey))
stopifnot(as.character(packageVersion("survey")) == "4.1.1")
d <- data.frame(
  h   = c(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1),
  psu = c(0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4),
  ssu = c(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
  N1  = c(10, 10, 10, 10, 10, 10, 10, 10, 6, 6, 6, 6, 6),
  M2  = c(6, 6, 6, 5, 5, 8, 8, 8, 4, 4, 7, 7, 7),
  y1  = c(3, 5, 4, 9, 7, 2, 6, 1, 8, 4, 5, 3, 9),
  y2  = c(1.5, 0.5, 2, 3, 2.5, 1, 0, 4, 2, 3.5, 1, 0.5, 2),
  dom = c(0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1)
)
des <- svydesign(id = ~psu + ssu, strata = ~h, fpc = ~N1 + M2, data = d)
r <- svyby(~y1 + y2, ~dom, des, svymean, covmat = TRUE)
options(digits = 17)
print(coef(r))
print(vcov(r))
print(weights(des))

# tests/core_estimate.rs::ratios_of_two_numerators_by_two_denominators_match_r: the same
# design, y1 and y2 over M2 and N1 (design columns used as plain numbers).
r <- svyratio(~y1 + y2, ~M2 + N1, des, covmat = TRUE)
print(coef(r))
print(vcov(r))

# tests/core_estimate.rs (lonely_rules_in_domains_match_r): one stage, a lonely
# stratum (2), two domains (domain 0 absent from stratum 1, domain 1 from stratum 2 and
# with one PSU of three in stratum 0); each lonely-PSU rule, with and without
# survey.adjust.domain.lonely.  R subsets each domain: SE^2 per domain.
one <- data.frame(
  h   = c(0, 0, 0, 0, 1, 1, 1, 2, 2),
  psu = c(0, 0, 1, 2, 3, 3, 4, 5, 5),
  w   = c(2, 2, 3, 1, 4, 4, 2, 5, 5),
  y   = c(1, 4, 2, 6, 3, 5, 2, 7, 1),
  dom = c(0, 0, 0, 1, 1, 1, 1, 0, 0)
)
for (rule in c("adjust", "average", "remove", "certainty")) for (adj in c(FALSE, TRUE)) {
  options(survey.lonely.psu = rule, survey.adjust.domain.lonely = adj)
  lonely <- svydesign(id = ~psu, strata = ~h, weights = ~w, data = one)
  r <- suppressWarnings(svyby(~y, ~dom, lonely, svytotal))
  cat(rule, adj, "totals", r$y, "SE^2", sprintf("%.17g", r$se^2), "\n")
}
