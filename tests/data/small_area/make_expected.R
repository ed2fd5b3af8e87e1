# Expected numbers for tests/test_small_area.py, from R's sae 1.3 (eblupFH, mseFH).
# Run from this folder: Rscript make_expected.R  (reads provinces.csv; writes milk.csv,
# grapes.csv, flat.csv and sae_expected.json).  sae is installed from its CRAN source with
# R CMD INSTALL; it needs MASS and lme4.
suppressPackageStartupMessages(library(sae))
library(jsonlite)

data(milk)
data(grapes)
milk$var <- milk$SD^2
write.csv(milk, "milk.csv", row.names = FALSE)
grapes$area_id <- seq_len(nrow(grapes))
write.csv(grapes, "grapes.csv", row.names = FALSE)

# Few areas, small spread: sae's Fisher scoring steps below zero and stops without
# estimates (convergence FALSE); sscoverage truncates at zero.
flat <- data.frame(area = 1:5, y = c(0.365, 0.4024, 0.3054, 0.3805, 0.251),
                   var = c(0.0034, 0.00448, 0.00112, 0.00444, 0.00883),
                   x = c(0.777, 0.935, 0.212, 0.652, 0.126))
write.csv(flat, "flat.csv", row.names = FALSE)

# The bundled survey's flexible workers' pension lapse by province (direct estimates
# and design variances from sscoverage, written by tests/test_small_area.py's
# write_provinces()) with the shipped synthetic covariates.
provinces <- read.csv("provinces.csv")

cases <- list(
  milk = list(data = milk, formula = yi ~ as.factor(MajorArea), vardir = "var"),
  grapes = list(data = grapes, formula = grapehect ~ area + workdays - 1, vardir = "var"),
  flat = list(data = flat, formula = y ~ x, vardir = "var"),
  provinces = list(data = provinces, vardir = "variance",
                   formula = estimate ~ platform_share + flexible_low_income_share + urbanisation)
)

out <- list()
for (name in names(cases)) {
  case <- cases[[name]]
  for (method in c("REML", "ML", "FH")) {
    d <- case$data
    d$.vardir <- d[[case$vardir]]
    fit <- eblupFH(case$formula, .vardir, method = method, data = d)
    res <- list(dataset = name, method = method, formula = deparse(case$formula),
                converged = fit$fit$convergence, iterations = fit$fit$iterations)
    if (isTRUE(fit$fit$convergence)) {
      mse <- mseFH(case$formula, .vardir, method = method, data = d)
      res$refvar <- fit$fit$refvar
      res$beta <- fit$fit$estcoef$beta
      res$std_error <- fit$fit$estcoef$std.error
      res$loglike <- unname(fit$fit$goodness["loglike"])
      res$eblup <- as.vector(fit$eblup)
      res$mse <- mse$mse
    }
    out[[paste(name, method, sep = "_")]] <- res
  }
}
out$r_version <- R.version.string
out$sae_version <- as.character(packageVersion("sae"))
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), pretty = TRUE), "sae_expected.json")
