#!/usr/bin/env python3
"""Rewrites the "Every point" section of docs/cost-model.md from the model's predictions.

    scripts/cost_model_points.py [BUILD_DIR]      default: build

Runs PublishedPoints.HeldPointsMeetTheGoal with HAEIN_SHOW_POINTS=1 (it prints one line
per row of topology/calibration/published.csv) and writes a table per source.
"""
import csv
import io
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
BINARY = os.path.join(BUILD, "tests", "topology", "topology_tests")
DATA = os.path.join(ROOT, "topology", "calibration", "published.csv")
DOC = os.path.join(ROOT, "docs", "cost-model.md")
LINE = re.compile(
    r"published\.csv:(\d+)\s+\S+\s+r\d+\s+n\d+\s+\d+ B meas\s+[\d.]+ GB/s pred\s+([\d.]+)\s+"
    r"([+-][\d.]+)%\s+(\S+)\s+([\d.]+) us")


def predictions():
    env = dict(os.environ, HAEIN_SHOW_POINTS="1")
    out = subprocess.run([BINARY, "--gtest_filter=*HeldPointsMeetTheGoal"], env=env,
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            found[int(m.group(1))] = m.group(2, 3, 4, 5)
    return found


def human(size):
    size = int(float(size))
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def main():
    pred = predictions()
    rows = list(csv.reader(io.open(DATA, newline="")))
    header = rows[0]
    groups, order = {}, []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        d = dict(zip(header, row))
        if d["source"] not in groups:
            groups[d["source"]] = []
            order.append(d["source"])
        groups[d["source"]].append((number, d))
    out = ["## Every point", ""]
    for source in order:
        out += [f"#### {source}", "",
                "| line | system | ranks | size | collective | measured busbw | measured time | "
                "predicted busbw | predicted time | error | NCCL algorithm / protocol (model) "
                "| held |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for number, d in groups[source]:
            busbw, error, chosen, micros = pred[number]
            system = (f"{d['system']} x{d['racks']} racks" if d["racks"] != "0"
                      else f"{d['system']} x{d['nodes']}")
            ranks = int(d["nodes"]) * int(d["gpus_per_node"])
            time = f"{d['time_us']} us" if d["time_us"] else "-"
            held = {"yes": "yes", "no": "no", "spread": "mean"}[d["check"]]
            out.append(f"| {number} | {system} | {ranks} | {human(d['bytes'])} | "
                       f"{d['collective']} | {d['busbw']} | {time} | {busbw} | {micros} us | "
                       f"{error}% | {d['algorithm']}: {chosen} | {held} |")
        out.append("")
    doc = open(DOC).read()
    start = doc.index("## Every point")
    open(DOC, "w").write(doc[:start] + "\n".join(out).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
