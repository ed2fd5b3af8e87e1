# Predictive margins and discrete marginal effects of stype after a logistic svyglm on
# apiclus1 with JK1 replicate weights, recomputed per replicate (R's replicate
# coefficients and replicate weights), for tests/test_glm_inference.py.
#
#   Rscript tests/data/r_checks/margins.R      (writes margins.json beside this script)

suppressPackageStartupMessages({
  library(survey)
  library(jsonlite)
})
stopifnot(as.character(packageVersion("survey")) == "4.1.1")
file_arg <- sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))
here <- dirname(normalizePath(file_arg))

data(api)
dclus1 <- svydesign(id = ~dnum, weights = ~pw, data = apiclus1, fpc = ~fpc)
rep <- as.svrepdesign(dclus1, type = "JK1")
m <- svyglm(sch.wide ~ ell + meals + stype, rep, family = quasibinomial, return.replicates = TRUE)
betas <- m$replicates
if (is.null(betas)) betas <- attr(m, "replicates")
stopifnot(!is.null(betas), ncol(betas) == length(coef(m)))
w <- weights(rep, "sampling")
wr <- weights(rep, "analysis")
levels_ <- levels(apiclus1$stype)
margin <- function(level, beta, weights) {
  x <- model.matrix(~ ell + meals + stype, transform(apiclus1, stype = factor(level, levels = levels_)))
  p <- as.vector(plogis(x %*% beta))
  sum(weights * p) / sum(weights)
}
full <- sapply(levels_, function(l) margin(l, coef(m), w))
reps <- sapply(levels_, function(l) sapply(seq_len(nrow(betas)), function(r) margin(l, betas[r, ], wr[, r])))
effects_full <- full[-1] - full[1]
effects_reps <- reps[, -1, drop = FALSE] - reps[, 1]
v_margins <- svrVar(reps, rep$scale, rep$rscales, mse = rep$mse, coef = full)
v_effects <- svrVar(effects_reps, rep$scale, rep$rscales, mse = rep$mse, coef = effects_full)
out <- list(
  survey_version = as.character(packageVersion("survey")),
  levels = levels_,
  predictive_margins = list(estimate = unname(full), se = unname(sqrt(diag(as.matrix(v_margins))))),
  marginal_effects = list(levels = levels_[-1], estimate = unname(effects_full),
                          se = unname(sqrt(diag(as.matrix(v_effects)))))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "margins.json"))
