# Expected numbers for tests/test_r_edges.py: R's survey 4.1.1 at the edges (issue 14, item 8).
# Run from the checkout:  Rscript tests/data/r_edges/r_edges.R ../shared/reference/data
# Writes nhanes.csv (survey's data(nhanes)) and expected.json beside this script.
suppressMessages({library(survey); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
refdata <- if (length(args)) args[1] else "../shared/reference/data"
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))))
out <- list()
est <- function(m) list(estimate = unname(coef(m)), se = unname(SE(m)))
msg <- function(expr) tryCatch({expr; NA}, error = function(e) conditionMessage(e))

data(nhanes)
write.csv(nhanes, file.path(here, "nhanes.csv"), row.names = FALSE)
nh <- nhanes
nh$st <- nh$SDMVSTRA - 74           # strata 1..15: R orders them as text, "1" "10" "11" ... "2"
two <- subset(nh, SDMVPSU != 3)     # every stratum two PSUs (PSU labels not in data order)
d2 <- svydesign(ids = ~SDMVPSU, strata = ~st, nest = TRUE, weights = ~WTMEC2YR, data = two)

## 1. BRR / Fay half-samples as brrweights assigns them
brr <- as.svrepdesign(d2, type = "BRR")
fay <- as.svrepdesign(d2, type = "Fay", fay.rho = 0.3)
out$brr_order <- list(
  brr_chol = est(svymean(~HI_CHOL, brr, na.rm = TRUE)),
  brr_gender = est(svymean(~RIAGENDR, brr)),
  fay_chol = est(svymean(~HI_CHOL, fay, na.rm = TRUE)),
  fay_total = est(svytotal(~RIAGENDR, fay)),
  n_replicates = ncol(brr$repweights$weights))

## 2. strata with more or fewer than two PSUs
dfull <- svydesign(ids = ~SDMVPSU, strata = ~st, nest = TRUE, weights = ~WTMEC2YR, data = nh)
merge_large <- as.svrepdesign(dfull, type = "BRR", large = "merge")
dstrat <- svydesign(ids = ~1, strata = ~stype, weights = ~pw, data = read.csv(file.path(refdata, "apistrat.csv")))
split_api <- as.svrepdesign(dstrat, type = "BRR")
merge_api <- as.svrepdesign(dstrat, type = "Fay", fay.rho = 0.5, large = "merge")
single3 <- subset(two, !(st %in% c(1, 2, 3) & SDMVPSU == 2))
single2 <- subset(two, !(st %in% c(4, 12) & SDMVPSU == 2))
ds3 <- svydesign(ids = ~SDMVPSU, strata = ~st, nest = TRUE, weights = ~WTMEC2YR, data = single3)
ds2 <- svydesign(ids = ~SDMVPSU, strata = ~st, nest = TRUE, weights = ~WTMEC2YR, data = single2)
out$large_small <- list(
  odd_split_error = msg(as.svrepdesign(dfull, type = "BRR")),
  merge_large_chol = est(svymean(~HI_CHOL, merge_large, na.rm = TRUE)),
  merge_large_n = ncol(merge_large$repweights$weights),
  split_api = est(svymean(~api00 + enroll, split_api)),
  split_api_n = ncol(split_api$repweights$weights),
  merge_api = est(svymean(~api00 + enroll, merge_api)),
  merge_api_n = ncol(merge_api$repweights$weights),
  small_fail_error = msg(as.svrepdesign(ds3, type = "BRR")),
  small3_split = est(svymean(~RIAGENDR, as.svrepdesign(ds3, type = "BRR", small = "split"))),
  small3_merge = est(svymean(~RIAGENDR, as.svrepdesign(ds3, type = "BRR", small = "merge"))),
  small2_merge = est(svymean(~RIAGENDR, as.svrepdesign(ds2, type = "BRR", small = "merge"))),
  small2_split_n = ncol(as.svrepdesign(ds2, type = "BRR", small = "split")$repweights$weights))

## 3. the likelihood interval with a large design effect (pupils of apiclus1's schools:
##    each school's row repeated 60 times, so the design effect is ~60 times apiclus1's)
clus <- read.csv(file.path(refdata, "apiclus1.csv"))
clus$yes <- as.numeric(clus$sch.wide == "Yes")
pupils <- clus[rep(seq_len(nrow(clus)), each = 60), ]
dp <- svydesign(ids = ~dnum, weights = ~pw, data = pupils)
lik <- svyciprop(~yes, dp, method = "likelihood")
m <- svyglm(yes ~ 1, dp, family = quasibinomial)
out$likelihood <- list(estimate = as.numeric(coef(lik)), ci = as.numeric(attr(lik, "ci")),
                       lambda = unname(vcov(m)[1, 1] / m$naive.cov[1, 1]),
                       logit_ci = as.numeric(attr(svyciprop(~yes, dp, method = "logit"), "ci")))

## 4. degrees of freedom of a domain of a replicate design
apistrat <- read.csv(file.path(refdata, "apistrat.csv"))
apistrat$yes <- as.numeric(apistrat$sch.wide == "Yes")
dstrat <- svydesign(ids = ~1, strata = ~stype, weights = ~pw, data = apistrat)
jkn <- as.svrepdesign(dstrat, type = "JKn")
sub_e <- subset(jkn, stype == "E")
m_e <- svymean(~api00, sub_e)
sub_brr <- subset(brr, RIAGENDR == 1 & st %in% 1:6)
out$degf <- list(full = degf(jkn), sub_e = degf(sub_e), sub_e_ci = unname(confint(m_e, df = degf(sub_e))[1, ]),
                 brr_full = degf(brr), brr_sub = degf(sub_brr),
                 brr_sub_ci = unname(confint(svymean(~HI_CHOL, sub_brr, na.rm = TRUE), df = degf(sub_brr))[1, ]))

## 5. svyciprop logit / likelihood on replicate designs (svyglm refitted per replicate)
cp <- function(r) list(estimate = as.numeric(coef(r)), se = as.numeric(SE(r)), ci = as.numeric(attr(r, "ci")))
out$ciprop_rep <- list(
  jkn_logit = cp(svyciprop(~yes, jkn, method = "logit")),
  jkn_likelihood = cp(svyciprop(~yes, jkn, method = "likelihood")),
  jkn_e_logit = cp(svyciprop(~yes, sub_e, method = "logit")),
  jkn_e_likelihood = cp(svyciprop(~yes, sub_e, method = "likelihood")),
  brr_logit = cp(svyciprop(~HI_CHOL, brr, method = "logit", na.rm = TRUE)),
  brr_likelihood = cp(svyciprop(~HI_CHOL, brr, method = "likelihood", na.rm = TRUE)))

## 6. a by-domain with zero total weight is dropped
zw <- apistrat; zw$w <- ifelse(zw$stype == "H", 0, zw$pw)
dz <- svydesign(ids = ~1, strata = ~stype, weights = ~w, data = zw)
dzc <- svydesign(ids = ~dnum, weights = ~w, data = zw)
by_mean <- svyby(~api00, ~stype, dz, svymean)
by_total <- svyby(~api00, ~stype, dz, svytotal)
by_clus <- svyby(~api00, ~stype, dzc, svymean)
out$zero_domain <- list(levels = as.character(by_mean$stype),
                        mean = unname(coef(by_mean)), mean_se = unname(SE(by_mean)),
                        total = unname(coef(by_total)), total_se = unname(SE(by_total)),
                        clus_mean = unname(coef(by_clus)), clus_se = unname(SE(by_clus)))

## 7. R's warnings: fpc varying within a stratum; NaNs produced (a negative variance)
fv <- apistrat; fv$fpc2 <- fv$fpc; fv$fpc2[fv$stype == "M"][1] <- fv$fpc2[fv$stype == "M"][1] + 10
w_fpc <- NULL
dfv <- withCallingHandlers(svydesign(ids = ~1, strata = ~stype, fpc = ~fpc2, data = fv),
                           warning = function(w) {w_fpc <<- conditionMessage(w); invokeRestart("muffleWarning")})
jk1 <- read.csv(file.path(refdata, "repw_apiclus1_JK1.csv"))
w_nan <- NULL
neg <- svrepdesign(data = clus, repweights = as.matrix(jk1), type = "other", scale = 1,
                   rscales = rep(c(1, -2), length.out = ncol(jk1)), combined.weights = FALSE, weights = ~pw)
m_neg <- svymean(~api00, neg)
se_neg <- withCallingHandlers(SE(m_neg), warning = function(w) {w_nan <<- conditionMessage(w); invokeRestart("muffleWarning")})
out$warnings <- list(fpc_message = w_fpc, fpc_mean = est(svymean(~api00, dfv)),
                     nan_message = w_nan, nan_estimate = unname(coef(m_neg)), nan_se = unname(se_neg),
                     nan_var = unname(diag(vcov(m_neg))))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), file.path(here, "expected.json"))
