#!/usr/bin/env python3
"""Score an LLM eval results file and compare it with a baseline.

Input: a JSONL file, one case per line. Each line needs an "id" and either
  - "passed": true/false (already scored, e.g. by a judge or a checker), or
  - "expected" and "output" strings, compared after normalisation
    (case-folded, whitespace collapsed, surrounding punctuation stripped).
Optional: "category" (defaults to "uncategorised").
A case id may appear several times (repeated samples); its pass rate is the
fraction of passing samples, and it counts as passed when all samples pass.

Usage:
  score_eval.py results.jsonl
  score_eval.py results.jsonl --save baseline.json
  score_eval.py results.jsonl --baseline baseline.json

Exit status: 0 on success, 1 if any case that passed in the baseline now fails
(or is missing), 2 on invalid input.

Standard library only.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict


def normalise(text: str) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip().casefold()
    return text.strip(" .,;:!?\"'")


def load_results(path: str) -> dict[str, dict]:
    """Return {case_id: {"category": str, "samples": [bool, ...]}}."""
    cases: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from exc
            if not isinstance(row, dict) or "id" not in row:
                raise ValueError(f"{path}:{lineno}: each line must be an object with an 'id'")
            if "passed" in row:
                if not isinstance(row["passed"], bool):
                    raise ValueError(f"{path}:{lineno}: 'passed' must be true or false")
                passed = row["passed"]
            elif "expected" in row and "output" in row:
                passed = normalise(row["expected"]) == normalise(row["output"])
            else:
                raise ValueError(
                    f"{path}:{lineno}: need 'passed', or both 'expected' and 'output'"
                )
            case_id = str(row["id"])
            entry = cases.setdefault(
                case_id, {"category": str(row.get("category", "uncategorised")), "samples": []}
            )
            entry["samples"].append(passed)
    if not cases:
        raise ValueError(f"{path}: no cases found")
    return cases


def case_passed(entry: dict) -> bool:
    return all(entry["samples"])


def summarise(cases: dict[str, dict]) -> None:
    by_cat: dict[str, list[bool]] = defaultdict(list)
    flaky = []
    for case_id, entry in cases.items():
        by_cat[entry["category"]].append(case_passed(entry))
        if 0 < sum(entry["samples"]) < len(entry["samples"]):
            flaky.append(case_id)
    width = max(len(c) for c in by_cat) if by_cat else 10
    print(f"{'category':<{width}}  passed  total  rate")
    total_pass = 0
    for cat in sorted(by_cat):
        results = by_cat[cat]
        n_pass = sum(results)
        total_pass += n_pass
        print(f"{cat:<{width}}  {n_pass:>6}  {len(results):>5}  {n_pass / len(results):6.1%}")
    print(f"{'ALL':<{width}}  {total_pass:>6}  {len(cases):>5}  {total_pass / len(cases):6.1%}")
    if flaky:
        print(f"\nunstable cases (some samples passed, some failed): {', '.join(sorted(flaky))}")


def compare(cases: dict[str, dict], baseline_path: str) -> int:
    with open(baseline_path, encoding="utf-8") as fh:
        baseline: dict[str, bool] = json.load(fh)["cases"]
    regressed = sorted(
        cid for cid, was_passing in baseline.items()
        if was_passing and (cid not in cases or not case_passed(cases[cid]))
    )
    fixed = sorted(
        cid for cid, was_passing in baseline.items()
        if not was_passing and cid in cases and case_passed(cases[cid])
    )
    new = sorted(cid for cid in cases if cid not in baseline)
    print(f"\ncompared with {baseline_path}:")
    print(f"  newly failing or missing: {len(regressed)}")
    for cid in regressed:
        state = "missing" if cid not in cases else "failing"
        print(f"    - {cid} ({state})")
    print(f"  newly passing: {len(fixed)}")
    for cid in fixed:
        print(f"    + {cid}")
    print(f"  cases not in baseline: {len(new)}")
    return 1 if regressed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="JSONL results file")
    parser.add_argument("--baseline", help="baseline JSON written earlier with --save")
    parser.add_argument("--save", help="write this run's per-case outcome as a baseline")
    args = parser.parse_args(argv)

    try:
        cases = load_results(args.results)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    summarise(cases)
    status = 0
    if args.baseline:
        try:
            status = compare(cases, args.baseline)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: cannot read baseline: {exc}", file=sys.stderr)
            return 2
    if args.save:
        with open(args.save, "w", encoding="utf-8") as fh:
            json.dump({"cases": {cid: case_passed(e) for cid, e in sorted(cases.items())}},
                      fh, indent=2)
            fh.write("\n")
        print(f"\nbaseline written to {args.save}")
    return status


if __name__ == "__main__":
    sys.exit(main())
