"""The human preference study of the paper's Table 3 (section 5.2), run locally.

    segan evaluate ... --method segan=RUN --method pix2pix=RUN2 --save-crops 200 --out EVAL
    segan study create --eval EVAL --pairs 50 --out STUDY   # design + STUDY/study.sqlite
    segan study serve STUDY --port 8080                     # the page participants answer
    segan study report STUDY                                # Table 3: md, json, png

`segan.study.db` (schema, migrations), `design` (create), `store` (participants and votes),
`app` (the web page, FastAPI), `report` (Table 3). None of them imports torch.
"""

from .db import SCHEMA_VERSION, StudyError, connect, migrate
from .design import create_study
from .report import study_report, wilson_interval, write_report
from .store import StudyStore

__all__ = ["SCHEMA_VERSION", "StudyError", "StudyStore", "connect", "create_study", "migrate",
           "study_report", "wilson_interval", "write_report"]
