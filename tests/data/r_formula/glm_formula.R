# R survey 4.1.1: svyglm with a logical I() term, and with missing covariates (rows dropped).
# Run from tests/data/r_formula: Rscript glm_formula.R; the numbers are copied into tests/test_formula.py.
library(survey)
df <- read.csv("../../../../shared/reference/data/apistrat.csv")
d <- svydesign(ids=~1, strata=~stype, weights=~pw, fpc=~fpc, data=df)
f <- svyglm(api00 ~ I(ell > 20) + meals, design=d)
print(coef(f), digits=15); print(SE(f), digits=15)
df2 <- df; df2$meals[c(4,11,51)] <- NA
d2 <- svydesign(ids=~1, strata=~stype, weights=~pw, fpc=~fpc, data=df2)
f2 <- svyglm(api00 ~ ell + meals, design=d2)
print(coef(f2), digits=15); print(SE(f2), digits=15); print(f2$df.residual)
