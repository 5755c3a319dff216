"""`segan study create|serve|report`: the human preference study of Table 3."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segan.cli.common import check_out_folder, count_int, positive_int, seed_int


def cmd_study(args: argparse.Namespace) -> int:
    from segan import study

    if args.study_command == "create":
        check_out_folder(args.out, "--out")
        summary = study.create_study(args.eval, args.out, baselines=args.methods,
                                     pairs=args.pairs, checks=args.checks, seed=args.seed)
        print(json.dumps(summary))
    elif args.study_command == "serve":
        from segan.study.app import serve

        serve(args.study, host=args.host, port=args.port, ready=lambda url: print(
            f"segan study on {url} (Ctrl+C stops it)", flush=True))
    else:
        rep = study.write_report(args.study, args.out)
        for r in rep["rows"]:
            share = "n/a" if r["share_ours"] is None else f"{100 * r['share_ours']:.1f}%"
            print(f"{rep['ours']} vs {r['baseline']}: {share} of {r['votes']} votes")
        print(f"report: {', '.join(rep['files'])}")
    return 0


def add_study(sub: argparse._SubParsersAction) -> None:
    """`segan study create|serve|report`."""
    st = sub.add_parser("study", help="the human preference study of Table 3: create it "
                        "from an evaluation's painted crops, serve its page, report the votes")
    ss = st.add_subparsers(dest="study_command", required=True)
    sc = ss.add_parser("create", help="sample objects and pairs; write STUDY/images and "
                       "STUDY/study.sqlite")
    sc.add_argument("--eval", type=Path, required=True,
                    help="an OUT folder of `segan evaluate --save-crops N`")
    sc.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                    help="the baselines compared with segan (default: every painting method "
                    "with crops; segan itself may be listed)")
    sc.add_argument("--pairs", type=positive_int, default=50,
                    help="objects per baseline (default 50; the same objects for each)")
    sc.add_argument("--checks", type=count_int, default=5,
                    help="attention-check items: ground truth against a broken painting")
    sc.add_argument("--seed", type=seed_int, default=0)
    sc.add_argument("--out", type=Path, required=True, help="the study folder to make")
    sc.set_defaults(func=cmd_study)
    sv = ss.add_parser("serve", help="the study page (one vote per participant and pair)")
    sv.add_argument("study", type=Path)
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sv.add_argument("--port", type=int, default=8080, help="port (0: any free one)")
    sv.set_defaults(func=cmd_study)
    sr = ss.add_parser("report", help="Table 3 from the votes: table3.{md,json,png}")
    sr.add_argument("study", type=Path)
    sr.add_argument("--out", type=Path, default=None, help="folder (default STUDY/report)")
    sr.set_defaults(func=cmd_study)
