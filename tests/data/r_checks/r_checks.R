# Expected numbers for tests/test_r_checks.py, computed with R's survey 4.1.1.
#
#   Rscript tests/data/r_checks/r_checks.R     (from the repository root)
#
# Writes, beside this script:
#   data.csv        a small made-up stratified cluster sample (values rounded so that
#                   the CSV holds every number exactly);
#   repweights.csv  the replicate weights R built for the JK1, BRR and bootstrap designs
#                   (17 significant digits: the bootstrap draws cannot be redone in Python);
#   expected.json   (15 significant digits) svyquantile for every qrule x interval type
#                   and svyciprop for every method, on each design kind (an R error is
#                   stored as {"error": ...}); means and totals by domain for the streamed
#                   designs, with fpc and raked, and a Cox model with fpc.
# The tests read these files; they never run R.

suppressPackageStartupMessages({
  library(survey)
  library(jsonlite)
})
stopifnot(as.character(packageVersion("survey")) == "4.1.1")
file_arg <- sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))
here <- dirname(normalizePath(file_arg))

# ---------------------------------------------------------------- data
set.seed(20261202)
parts <- list()
for (h in 1:4) {
  for (j in 1:4) {
    m <- sample(8:14, 1)
    parts[[length(parts) + 1]] <- data.frame(
      h = h, psu = (h - 1) * 4 + j, pair = (h - 1) * 2 + (j > 2) + 1,
      N_h = c(20, 25, 30, 40)[h], m = m
    )[rep(1, m), ]
  }
}
d <- do.call(rbind, parts)
n <- nrow(d)
d$m <- NULL
d$w <- round(runif(n, 5, 40), 2)
d$x <- round(rlnorm(n, 3, 0.5))                        # integers: many ties
d$y <- rbinom(n, 1, c(0.2, 0.3, 0.4, 0.5)[d$h])
d$z <- round(rnorm(n, 50 + 5 * d$h, 10), 1)
# Not "g": svyglm on a replicate design evaluates its own variable g inside with(data, ...)
d$grp <- sample(c("a", "b", "c"), n, replace = TRUE)
d$prob <- round(runif(n, 0.05, 0.3), 4)                # PPS inclusion probabilities
rownames(d) <- NULL
write.csv(d, file.path(here, "data.csv"), row.names = FALSE)

# ---------------------------------------------------------------- designs
population <- c(`(Intercept)` = 9000, z = 9000 * 58, grpb = 3100, grpc = 2900)
stratclus <- svydesign(id = ~psu, strata = ~h, weights = ~w, fpc = ~N_h, data = d)
set.seed(7)
designs <- list(
  stratclus = stratclus,
  pps = svydesign(id = ~1, strata = ~h, fpc = ~prob, pps = "brewer", data = d),
  jk1 = as.svrepdesign(svydesign(id = ~psu, weights = ~w, data = d), type = "JK1"),
  brr = as.svrepdesign(svydesign(id = ~psu, strata = ~pair, weights = ~w, data = d), type = "BRR"),
  bootstrap = as.svrepdesign(svydesign(id = ~psu, strata = ~h, weights = ~w, data = d),
                             type = "bootstrap", replicates = 40),
  calibrated = calibrate(stratclus, ~z + grp, population = population)
)

replicate_info <- list()
repw <- data.frame(row = seq_len(n))
for (kind in c("jk1", "brr", "bootstrap")) {
  des <- designs[[kind]]
  r <- weights(des, "replication")
  colnames(r) <- sprintf("%s_%d", kind, seq_len(ncol(r)))
  repw <- cbind(repw, r)
  replicate_info[[kind]] <- list(
    type = des$type, scale = des$scale, rscales = unname(des$rscales), mse = des$mse,
    combined_weights = des$combined.weights,
    columns = colnames(r), degf = degf(des)
  )
}
repw$row <- NULL
write.csv(as.data.frame(lapply(repw, function(v) sprintf("%.17g", v))),
          file.path(here, "repweights.csv"), row.names = FALSE, quote = FALSE)

# ---------------------------------------------------------------- estimates
record <- function(expr) {
  tryCatch(expr, error = function(e) list(error = conditionMessage(e)))
}

qrules <- c("math", "school", "shahvaish", paste0("hf", 1:9))
probs <- c(0.1, 0.5, 0.75)
quantile_case <- function(des, rule, interval) {
  record({
    q <- suppressWarnings(svyquantile(~x, des, quantiles = probs, qrule = rule,
                                      interval.type = interval, ci = TRUE, se = TRUE))
    m <- q[[1]]
    list(estimate = unname(m[, 1]), ci_low = unname(m[, 2]), ci_high = unname(m[, 3]),
         se = unname(m[, 4]))
  })
}

# R 4.1.1's svyquantile on a replicate design does not hand interval.type to woodruffCI,
# so "beta", "xlogit" and "asin" all give the "mean" interval there (stored as
# "<type>/svyquantile"); the intervals asked for are woodruffCI's with that method.
woodruff_case <- function(des, rule, interval) {
  record({
    qrule <- get(paste0("qrule_", rule), envir = asNamespace("survey"))
    x <- des$variables$x
    w <- weights(des, "sampling")
    rows <- t(sapply(probs, function(p) {
      qhat <- qrule(x, w, p)
      ci <- survey:::woodruffCI(x, qhat, p, des, qrule, 0.05, degf(des), method = interval)
      c(qhat, ci, diff(ci) / (2 * qt(0.975, degf(des))))
    }))
    list(estimate = rows[, 1], ci_low = rows[, 2], ci_high = rows[, 3], se = rows[, 4])
  })
}

ciprop_case <- function(des, method) {
  record({
    r <- svyciprop(~y, des, method = method)
    ci <- attr(r, "ci")
    list(estimate = as.numeric(coef(r)), se = as.numeric(SE(r)), ci_low = as.numeric(ci[1]),
         ci_high = as.numeric(ci[2]))
  })
}

# The mean of y with its SE and the design df: the inputs of the hand formulas (Wilson).
mean_case <- function(des) {
  m <- svymean(~y, des)
  list(estimate = as.numeric(coef(m)), se = as.numeric(SE(m)), degf = degf(des))
}

replicate_kinds <- c("jk1", "brr", "bootstrap")
out <- list(survey_version = as.character(packageVersion("survey")), probs = probs,
            population = as.list(population), replicates = replicate_info, designs = list())
for (kind in names(designs)) {
  des <- designs[[kind]]
  intervals <- if (kind %in% replicate_kinds) c("mean", "beta", "xlogit", "asin", "quantile")
               else c("mean", "beta", "xlogit", "asin", "score")
  quant <- list()
  for (rule in qrules) {
    quant[[rule]] <- list()
    for (it in intervals) quant[[rule]][[it]] <- quantile_case(des, rule, it)
    if (kind %in% replicate_kinds) {
      for (it in c("beta", "xlogit", "asin")) {
        quant[[rule]][[paste0(it, "/svyquantile")]] <- quant[[rule]][[it]]
        quant[[rule]][[it]] <- woodruff_case(des, rule, it)
      }
    }
  }
  # A domain: R keeps the rows of a calibrated or PPS design outside it at zero weight.
  quant_sub <- list()
  if (!(kind %in% replicate_kinds)) {
    for (rule in c("math", "hf3", "hf7")) {
      quant_sub[[rule]] <- list()
      for (it in intervals) quant_sub[[rule]][[it]] <- quantile_case(subset(des, grp == "b"), rule, it)
    }
  }
  cip <- list()
  sub <- subset(des, grp == "b")
  for (method in c("logit", "likelihood", "asin", "beta", "mean", "xlogit")) {
    cip[[method]] <- ciprop_case(des, method)
    cip[[paste0(method, "/grp==b")]] <- ciprop_case(sub, method)
  }
  out$designs[[kind]] <- list(degf = degf(des), quantile = quant, quantile_sub = quant_sub, ciprop = cip,
                              mean_y = mean_case(des), mean_y_sub = mean_case(sub))
}

rake_margins <- list(grp = data.frame(grp = c("a", "b", "c"), Freq = c(3000, 3100, 2900)),
                     h = data.frame(h = 1:4, Freq = c(1800, 2100, 2400, 2700)))
raked <- rake(stratclus, list(~grp, ~h), list(rake_margins$grp, rake_margins$h))
# A domain of a raked and of a post-stratified design: R keeps the rows outside it.
poststratified <- postStratify(stratclus, ~h, data.frame(h = 1:4, Freq = c(1800, 2100, 2400, 2700)))
out$weighted_domains <- list(
  raked = ciprop_case(subset(raked, grp == "b"), "beta"),
  poststratified = ciprop_case(subset(poststratified, grp == "b"), "beta")
)

# Every rule with equal weights on 1..40, out to the tails (tests/test_quantile.py):
# survey's hf3 is not stats::quantile(type = 3).
equal <- svydesign(id = ~1, weights = ~w, data = data.frame(x = 1:40, w = 1))
tail_probs <- c(0.01, 0.075, 0.1, 0.33, 0.5, 0.77, 0.975, 0.99)
out$equal_weights <- list(probs = tail_probs, quantiles = lapply(setNames(nm = qrules), function(rule) {
  as.numeric(coef(svyquantile(~x, equal, tail_probs, qrule = rule, ci = FALSE)))
}))

# A rare event in a simple random sample: 1 case in 40 (tests/test_proportions.py).
rare <- suppressWarnings(svydesign(id = ~1, data = data.frame(y = c(1, rep(0, 39)))))
out$rare <- lapply(setNames(nm = c("logit", "likelihood", "asin", "beta", "mean", "xlogit")),
                   function(method) ciprop_case(rare, method))

# Means and totals by domain, for the streamed designs (first-stage fpc, a rake).
by_case <- function(des) {
  m <- svyby(~x + y, ~grp, des, svymean)
  t <- svytotal(~x, des)
  list(domains = as.character(m$grp), mean_x = unname(m$x), se_x = unname(m[["se.x"]]),
       mean_y = unname(m$y), se_y = unname(m[["se.y"]]),
       total_x = as.numeric(coef(t)), se_total_x = as.numeric(SE(t)))
}
cox <- svycoxph(Surv(x, y) ~ z + grp, stratclus)  # Efron's ties; x has many
out$streamed <- list(stratclus = by_case(stratclus), raked = by_case(raked), rake_margins = rake_margins,
                     cox = list(coef = unname(coef(cox)), se = unname(SE(cox))))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           file.path(here, "expected.json"))
