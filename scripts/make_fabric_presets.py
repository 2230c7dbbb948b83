#!/usr/bin/env python3
"""Writes the large fabric presets of topology/presets/ (docs/presets.md explains them).

    scripts/make_fabric_presets.py [OUT_DIR]      default: topology/presets

The files are checked in; rerun this after changing a design below. Every count comes
from the constants here, so a design change is one edit.
"""
import os
import sys

RADIX_NDR = 64  # NVIDIA QM9700/QM9790: 32 OSFP cages, 64 ports of 400 Gb/s NDR


def superpod_b200(units):
    """DGX SuperPOD with DGX B200: scalable units of 32 nodes, 8 rails, one 64-port leaf
    per rail and unit, non-blocking. Up to 8 units every spine reaches every leaf (two
    tiers); from 16 units spines form per-rail spine groups joined by a core group."""
    nodes_per_su, rails = 32, 8
    name = f"dgx-b200-superpod-{units}su"
    lines = [
        f"# DGX SuperPOD with DGX B200, {units} scalable unit{'s' if units > 1 else ''} of 32 nodes:",
        f"# {units * nodes_per_su} nodes, {units * nodes_per_su * 8:,} GPUs. Written by "
        "scripts/make_fabric_presets.py;",
        "# the design and its sources: docs/presets.md.",
        "version: 1",
        f"name: {name}",
        f"rails: {rails}",
        "nodes:",
        f'  - {{hostname: "su[01-{units:02d}]-dgx[01-32]", node_type: dgx-b200}}'
        if units > 1 else '  - {hostname: "su01-dgx[01-32]", node_type: dgx-b200}',
        "switches:",
    ]
    if units == 1:
        hosts = lambda su: "su01-dgx[01-32]"
    else:
        hosts = lambda su: f"su{su:02d}-dgx[01-32]"
    for su in range(1, units + 1):
        for rail in range(rails):
            lines.append(
                f'  - {{name: su{su:02d}-leaf-r{rail}, level: leaf, rail: {rail}, nodes: "{hosts(su)}", '
                f"link_gbps: 400, radix: {RADIX_NDR}}}")
    leaves = units * rails
    if units <= 8:
        # Each spine's 64 ports all go down, one to every leaf: leaves / 2 spines.
        spines = leaves * (RADIX_NDR // 2) // RADIX_NDR
        units_list = "su01" if units == 1 else f"su[01-{units:02d}]"
        lines.append(
            f'  - {{name: spine, level: spine, switches: "{units_list}-leaf-r[0-{rails - 1}]", '
            f"link_gbps: 400, radix: {RADIX_NDR}, count: {spines}}}")
        return name, lines
    # Three tiers: per rail, the rail's leaf of every unit under one spine group of
    # (units x 32 up-links) / 32 down-ports spines; the core group takes every up-link.
    per_group = units * (RADIX_NDR // 2) // (RADIX_NDR // 2)
    for rail in range(rails):
        lines.append(
            f'  - {{name: spine-r{rail}, level: spine, rail: {rail}, '
            f'switches: "su[01-{units:02d}]-leaf-r{rail}", link_gbps: 400, radix: {RADIX_NDR}, '
            f"count: {per_group}}}")
    cores = rails * per_group * (RADIX_NDR // 2) // RADIX_NDR
    lines.append(
        f'  - {{name: core, level: core, switches: "spine-r[0-{rails - 1}]", link_gbps: 400, '
        f"radix: {RADIX_NDR}, count: {cores}}}")
    return name, lines


def nvl72_factory():
    """About 50,000 GPUs of GB200 NVL72 racks: 4 rails, each its own plane of a three-tier
    fat tree of 64-port NDR switches. Two racks per leaf at 1.5:1, pods of 16 leaves (32
    racks) under a spine group at 2:1, one core group per plane."""
    racks, rails, trays = 694, 4, 18
    racks_per_leaf, leaves_per_pod = 2, 16
    leaf_down = racks_per_leaf * trays               # 36 trays, one port each per rail
    leaf_over, spine_over = 1.5, 2
    leaf_up = int(leaf_down / leaf_over)             # 24
    leaves = -(-racks // racks_per_leaf)             # 347
    pods = -(-leaves // leaves_per_pod)              # 22
    spine_down = leaves_per_pod * leaf_up            # 384
    spine_up = int(spine_down / spine_over)          # 192
    spines = -(-(spine_down + spine_up) // RADIX_NDR)  # 9
    core_down = 0
    for pod in range(pods):
        pod_leaves = min(leaves_per_pod, leaves - pod * leaves_per_pod)
        core_down += -(-(pod_leaves * leaf_up) // spine_over)
    cores = -(-core_down // RADIX_NDR)
    name = "nvl72-factory-50k"
    lines = [
        f"# An AI factory of {racks} GB200 NVL72 racks: {racks * trays:,} compute trays, "
        f"{racks * trays * 4:,} GPUs.",
        f"# {rails} rails, each its own plane: a three-tier fat tree of 64-port 400 Gb/s switches,",
        f"# {racks_per_leaf} racks per leaf ({leaf_down} down, {leaf_up} up: {leaf_over}:1), pods of "
        f"{leaves_per_pod} leaves under a spine group",
        f"# of {spines} ({spine_down} down, {spine_up} up: {spine_over}:1), one core group of "
        f"{cores} per plane. Written by",
        "# scripts/make_fabric_presets.py; the assumptions: docs/presets.md.",
        "version: 1",
        f"name: {name}",
        f"rails: {rails}",
        "nodes:",
        f'  - {{hostname: "r[001-{racks:03d}]t[01-{trays}]", node_type: gb200-nvl72}}',
        "nvlink_domains:",
    ]
    for rack in range(1, racks + 1):
        lines.append(f'  - {{name: rack{rack:03d}, nodes: "r{rack:03d}t[01-{trays}]"}}')
    lines.append("switches:")
    for rail in range(rails):
        for leaf in range(leaves):
            first = leaf * racks_per_leaf + 1
            last = min(first + racks_per_leaf - 1, racks)
            hosts = f"r{first:03d}t[01-{trays}]" if first == last else \
                f"r[{first:03d}-{last:03d}]t[01-{trays}]"
            lines.append(
                f'  - {{name: p{rail}-leaf{leaf + 1:03d}, level: leaf, rail: {rail}, plane: {rail}, '
                f'nodes: "{hosts}", link_gbps: 400, oversubscription: {leaf_over}, '
                f"radix: {RADIX_NDR}}}")
        for pod in range(pods):
            first = pod * leaves_per_pod + 1
            last = min(first + leaves_per_pod - 1, leaves)
            lines.append(
                f'  - {{name: p{rail}-spine{pod + 1:02d}, level: spine, rail: {rail}, plane: {rail}, '
                f'switches: "p{rail}-leaf[{first:03d}-{last:03d}]", link_gbps: 400, '
                f"oversubscription: {spine_over}, radix: {RADIX_NDR}, count: {spines}}}")
        lines.append(
            f'  - {{name: p{rail}-core, level: core, rail: {rail}, plane: {rail}, '
            f'switches: "p{rail}-spine[01-{pods:02d}]", link_gbps: 400, radix: {RADIX_NDR}, '
            f"count: {cores}}}")
    return name, lines


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "topology", "presets")
    for name, lines in [superpod_b200(1), superpod_b200(4), superpod_b200(16), nvl72_factory()]:
        with open(os.path.join(out, name + ".yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
