"""The coverage report: the study's analyses on the bundled survey or on a researcher's
own file (a column mapping), written as a publication-style HTML page (en / zh), JSON
and xlsx; ``sscoverage report`` runs it."""

from .report import (
    Analyses,
    Report,
    Study,
    build_report,
    bundled_study,
    mapping_template,
    read_mapping,
    study_checks,
    study_from_files,
)

__all__ = ["Analyses", "Report", "Study", "build_report", "bundled_study", "mapping_template", "read_mapping",
           "study_checks", "study_from_files"]
