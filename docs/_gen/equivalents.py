"""The "coming from R's survey / Stata's svy / samplics" table: one source for the page and its test.

Each :class:`Equivalent` is a call a user knows, the sscoverage code that does the same,
and (``case``) the id of the R reference case in ``../shared/reference/cases`` whose
numbers that code must reproduce.  ``docs/_gen/hooks.py`` renders the page from
:data:`EQUIVALENTS`; ``tests/test_equivalents.py`` runs every ``code`` and compares the
value it leaves in ``result`` with R's numbers, so the page cannot drift from the package.

The code runs with ``ssc`` (sscoverage) and the reference data sets bound to their file
names without ``.csv`` (``apiclus1``, ``apistrat``, ``apiclus1_x`` ...), read as R read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

R, STATA, SAMPLICS = "R survey", "Stata svy", "samplics"
TOOLS = (R, STATA, SAMPLICS)


@dataclass(frozen=True)
class Equivalent:
    """One row of the table.

    Parameters
    ----------
    tool : str
        ``R``, ``STATA`` or ``SAMPLICS``.
    call : str
        The call in that tool.
    code : str
        sscoverage code; it leaves the estimate to check in ``result``.
    data : tuple of str
        Reference data files (``apiclus1.csv``) the code uses.
    case : str or None
        Id of the R reference case the result must match.
    expected : dict
        R's numbers for a call no reference case covers (with ``source``: where they come from).
    """

    tool: str
    call: str
    code: str
    data: tuple[str, ...]
    case: str | None = None
    expected: dict[str, Any] = field(default_factory=dict)


CLUS1 = 'design = ssc.Design(apiclus1, ids="dnum", weights="pw", fpc="fpc")\n'
STRAT = 'design = ssc.Design(apistrat, strata="stype", weights="pw", fpc="fpc")\n'
POP_STYPE = '{"E": 4421, "H": 755, "M": 1018}'

EQUIVALENTS: list[Equivalent] = [
    # ------------------------------------------------------------------ R's survey
    Equivalent(
        R,
        "des <- svydesign(ids=~dnum, strata=~stype, weights=~pw, nest=TRUE, data=apistrat)\nsvymean(~api00, des, deff=TRUE)",
        'design = ssc.Design(apistrat, ids="dnum", strata="stype", weights="pw", nest=True)\n'
        'result = design.mean("api00", deff=True)',
        ("apistrat.csv",),
        "apistrat/mean/api00/strat_clus_nest",
    ),
    Equivalent(
        R,
        "svymean(~api00, dclus1, deff=TRUE)",
        CLUS1 + 'result = design.mean("api00", deff=True)',
        ("apiclus1.csv",),
        "apiclus1/mean/api00",
    ),
    Equivalent(
        R,
        "svytotal(~enroll, dclus1, deff=TRUE)",
        CLUS1 + 'result = design.total("enroll", deff=True)',
        ("apiclus1.csv",),
        "apiclus1/total/enroll",
    ),
    Equivalent(
        R,
        "svyby(~api00, ~stype, dstrat, svymean)",
        STRAT + 'result = design.mean("api00", by="stype")',
        ("apistrat.csv",),
        "apistrat/by/mean/api00~stype",
    ),
    Equivalent(
        R,
        'svymean(~api00, subset(dclus1, stype == "E"))',
        CLUS1 + 'result = design.subset(apiclus1["stype"] == "E").mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/subset/mean/api00/stype==E",
    ),
    Equivalent(
        R,
        "svyratio(~api.stu, ~enroll, dstrat)",
        STRAT + 'result = design.ratio("api.stu", "enroll")',
        ("apistrat.csv",),
        "apistrat/ratio/api.stu_enroll",
    ),
    Equivalent(
        R,
        'svyquantile(~api00, dstrat, c(0.25, 0.5, 0.9), interval.type="mean", qrule="math", ci=TRUE)',
        STRAT + 'result = design.quantile("api00", [0.25, 0.5, 0.9], qrule="math", interval_type="mean")',
        ("apistrat.csv",),
        "apistrat/quantile/api00/woodruff",
    ),
    Equivalent(
        R,
        'svyciprop(~sch_wide_yes, dclus1, method="logit")',
        'design = ssc.Design(apiclus1_x, ids="dnum", weights="pw", fpc="fpc")\n'
        'result = design.ciprop("sch_wide_yes", method="logit")',
        ("apiclus1_x.csv",),
        "apiclus1/ciprop/sch_wide_yes/logit",
    ),
    Equivalent(
        R,
        'svychisq(~sch.wide+stype, dclus1, statistic="F")',
        CLUS1 + 'result = design.chisq("sch.wide", "stype", statistic="F")',
        ("apiclus1.csv",),
        "apiclus1/chisq/sch.wide+stype/F",
    ),
    Equivalent(
        R,
        "svycontrast(svyby(~api00, ~stype, dclus1, svymean, covmat=TRUE), c(1, -1, 0))",
        CLUS1 + 'result = design.contrast("api00", [1, -1, 0], "mean", by="stype")',
        ("apiclus1.csv",),
        "apiclus1/contrast/by_stype/E-H",
    ),
    Equivalent(
        R,
        "svyglm(api00 ~ ell + meals + mobility, dstrat)",
        STRAT + 'result = design.glm("api00 ~ ell + meals + mobility")',
        ("apistrat.csv",),
        "apistrat/glm/gaussian/api00~ell+meals+mobility",
    ),
    Equivalent(
        R,
        "regTermTest(svyglm(api00 ~ ell + meals + mobility + stype, dstrat), ~stype)",
        STRAT + 'result = design.glm("api00 ~ ell + meals + mobility + stype").wald_test("stype")',
        ("apistrat.csv",),
        expected={
            "statistic": 78.7064751722935,
            "p_value": 1.08736216594048e-25,
            "ndf": 2,
            "ddf": 192,
            "source": "R survey 4.1.1, regTermTest(...)$Ftest, $p, $df, $ddf (the R script heads tests/test_glm_inference.py)",
        },
    ),
    Equivalent(
        R,
        "des <- svydesign(ids=~sv_psu, strata=~celltype, weights=~sv_wt, nest=TRUE, data=veteran_x)\n"
        "svykm(Surv(time, status) ~ 1, des, se=TRUE)",
        'design = ssc.Design(veteran_x, ids="sv_psu", strata="celltype", weights="sv_wt", nest=True)\n'
        'result = design.km("time", "status", times=[30, 90, 180, 365], se=True)',
        ("veteran_x.csv",),
        "veteran/km/status/se",
    ),
    Equivalent(
        R,
        "svycoxph(Surv(time, status) ~ karno + celltype, des)",
        'design = ssc.Design(veteran_x, ids="sv_psu", strata="celltype", weights="sv_wt", nest=True)\n'
        'result = design.coxph("Surv(time, status) ~ karno + celltype",\n'
        '                      levels={"celltype": ["squamous", "smallcell", "adeno", "large"]})',
        ("veteran_x.csv",),
        "veteran/coxph/karno+celltype",
    ),
    Equivalent(
        R,
        'postStratify(dclus1, ~stype, data.frame(stype=c("E", "H", "M"), Freq=c(4421, 755, 1018)))',
        CLUS1 + f'result = design.poststratify("stype", {POP_STYPE}).mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/poststratify/stype/mean/api00",
    ),
    Equivalent(
        R,
        "rake(dclus1, list(~stype, ~sch.wide), list(pop.types, pop.schwide))",
        CLUS1 + f'raked = design.rake({{"stype": {POP_STYPE}, "sch.wide": {{"No": 1072, "Yes": 5122}}}})\n'
        'result = raked.mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/rake/stype+sch.wide/mean/api00",
    ),
    Equivalent(
        R,
        'calibrate(dclus1, ~stype+api99, c(`(Intercept)`=6194, stypeH=755, stypeM=1018, api99=3914069), calfun="linear")',
        CLUS1 + 'population = {"(Intercept)": 6194, "stypeH": 755, "stypeM": 1018, "api99": 3914069}\n'
        'result = design.calibrate("~stype + api99", population, calfun="linear").mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/calibrate/linear/mean/api00",
    ),
    Equivalent(
        R,
        'svymean(~api00, as.svrepdesign(dclus1, type="JK1"))',
        CLUS1 + 'result = design.as_replicates("JK1").mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/JK1/mean/api00",
    ),
    Equivalent(
        R,
        'svrepdesign(data=scd, type="BRR", repweights=~rw1+rw2+rw3+rw4, combined.weights=FALSE)',
        'design = ssc.ReplicateDesign(scd_x, repweights=["rw1", "rw2", "rw3", "rw4"], type="BRR",\n'
        "                             combined_weights=False)\n"
        'result = design.mean("alive")',
        ("scd_x.csv",),
        "scd/svrep_BRR/mean/alive",
    ),
    # ------------------------------------------------------------------ Stata
    Equivalent(
        STATA,
        "svyset dnum [pw=pw], fpc(fpc)\nsvy: mean api00",
        CLUS1 + 'result = design.mean("api00", deff=True)  # estat effects: deff',
        ("apiclus1.csv",),
        "apiclus1/mean/api00",
    ),
    Equivalent(
        STATA,
        "svyset _n [pw=pw], strata(stype) fpc(fpc)\nsvy: mean api00, over(stype)",
        STRAT + 'result = design.mean("api00", by="stype")',
        ("apistrat.csv",),
        "apistrat/by/mean/api00~stype",
    ),
    Equivalent(
        STATA,
        "svy: proportion stype",
        CLUS1 + 'result = design.mean("stype", deff=True)  # a factor gives one proportion per level',
        ("apiclus1.csv",),
        "apiclus1/mean/stype",
    ),
    Equivalent(
        STATA,
        "svy: total enroll",
        STRAT + 'result = design.total("enroll", deff=True)',
        ("apistrat.csv",),
        "apistrat/total/enroll",
    ),
    Equivalent(
        STATA,
        "svy: ratio api_stu/enroll",
        CLUS1 + 'result = design.ratio("api.stu", "enroll")',
        ("apiclus1.csv",),
        "apiclus1/ratio/api.stu_enroll",
    ),
    Equivalent(
        STATA,
        'svy, subpop(if stype=="E"): mean api00',
        CLUS1 + 'result = design.subset(apiclus1["stype"] == "E").mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/subset/mean/api00/stype==E",
    ),
    Equivalent(
        STATA,
        "svy: logistic awards_yes api99 i.stype",
        'design = ssc.Design(apiclus1_x, ids="dnum", weights="pw", fpc="fpc")\n'
        'result = design.glm("awards_yes ~ api99 + stype", family="quasibinomial")\n'
        "odds = result.odds_ratios()  # Stata's logistic reports exp(b)",
        ("apiclus1_x.csv",),
        "apiclus1/glm/quasibinomial/awards_yes~api99+stype",
    ),
    Equivalent(
        STATA,
        "svyset dnum [pw=pw], fpc(fpc) vce(jackknife)\nsvy: mean api00",
        CLUS1 + 'result = design.as_replicates("JK1").mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/JK1/mean/api00",
    ),
    # ------------------------------------------------------------------ samplics
    Equivalent(
        SAMPLICS,
        'TaylorEstimator("mean").estimate(y=api00, samp_weight=pw, stratum=stype, fpc=fpc)',
        STRAT + 'result = design.mean("api00", deff=True)',
        ("apistrat.csv",),
        "apistrat/mean/api00",
    ),
    Equivalent(
        SAMPLICS,
        'TaylorEstimator("total").estimate(y=enroll, samp_weight=pw, psu=dnum, fpc=fpc)',
        CLUS1 + 'result = design.total("enroll", deff=True)',
        ("apiclus1.csv",),
        "apiclus1/total/enroll",
    ),
    Equivalent(
        SAMPLICS,
        'TaylorEstimator("proportion").estimate(y=stype, samp_weight=pw, psu=dnum, fpc=fpc)',
        CLUS1 + 'result = design.mean("stype", deff=True)',
        ("apiclus1.csv",),
        "apiclus1/mean/stype",
    ),
    Equivalent(
        SAMPLICS,
        'TaylorEstimator("ratio").estimate(y=api_stu, x=enroll, samp_weight=pw, stratum=stype, fpc=fpc)',
        STRAT + 'result = design.ratio("api.stu", "enroll")',
        ("apistrat.csv",),
        "apistrat/ratio/api.stu_enroll",
    ),
    Equivalent(
        SAMPLICS,
        'TaylorEstimator("mean").estimate(y=api00, samp_weight=pw, stratum=stype, fpc=fpc, domain=stype)',
        STRAT + 'result = design.mean("api00", by="stype")',
        ("apistrat.csv",),
        "apistrat/by/mean/api00~stype",
    ),
    Equivalent(
        SAMPLICS,
        'ReplicateEstimator("brr", "mean").estimate(y=alive, samp_weight=w, rep_weights=scd[["rw1", "rw2", "rw3", "rw4"]])',
        'design = ssc.ReplicateDesign(scd_x, repweights=["rw1", "rw2", "rw3", "rw4"], type="BRR",\n'
        "                             combined_weights=False)\n"
        'result = design.mean("alive")',
        ("scd_x.csv",),
        "scd/svrep_BRR/mean/alive",
    ),
    Equivalent(
        SAMPLICS,
        'ReplicateEstimator("jackknife", "mean").estimate(y=api00, samp_weight=pw, rep_weights=jk1_weights, rep_coefs=...)',
        CLUS1 + 'result = design.as_replicates("JK1").mean("api00")',
        ("apiclus1.csv",),
        "apiclus1/JK1/mean/api00",
    ),
]


def _cell(text: str) -> str:
    """A Markdown table cell holding code: one <code> line per source line."""
    lines = [line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")
             for line in text.splitlines()]
    return "<br>".join(f"<code>{line}</code>" for line in lines)


def markdown() -> str:
    """The tables of the page, one section per tool."""
    out = []
    for tool in TOOLS:
        rows = [e for e in EQUIVALENTS if e.tool == tool]
        out += [f"## {tool}", "", f"| {tool} | sscoverage | checked against R |", "| --- | --- | --- |"]
        for e in rows:
            check = f"case `{e.case}`" if e.case else f"R's numbers ({e.expected['source']})"
            out.append(f"| {_cell(e.call)} | {_cell(e.code)} | {check} |")
        out.append("")
    return "\n".join(out)
