#!/usr/bin/env python3
"""Generate the lifeline seed data files under seeds/.

Deterministic: a fixed random seed, no clock, no network, Python 3.11 stdlib only.
Rerunning it rewrites exactly these files, byte for byte the same:

    seeds/communities.json  seeds/buildings.json   seeds/households.json
    seeds/catalogue.json    seeds/partners.json    seeds/tricycles.json
    seeds/volunteers.json

Usage (from the project root, or anywhere):  python3 scripts/gen_seeds.py
See seeds/README.md for the meaning of every field.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

SEED = 20200613  # the day Tianlun Jincheng was sealed
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "seeds"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

VULNERABILITIES = ["elderly_alone", "dialysis", "pregnant", "exam_student", "disabled"]
# Share of households per vulnerability; dialysis has a floor of 5 per community.
VULN_SHARE = {
    "elderly_alone": 0.06,
    "dialysis": 0.003,
    "pregnant": 0.01,
    "exam_student": 0.03,
    "disabled": 0.02,
}
DIALYSIS_MIN = 5

# ---------------------------------------------------------------------------
# Communities (figures for tianlun from the source story; huangtugang's
# household count, resident total and sealing time are chosen, see README).
# ---------------------------------------------------------------------------
TIANLUN_HOUSEHOLDS = 3314
TIANLUN_RESIDENTS = 9779
HUANGTUGANG_HOUSEHOLDS = 2806
HUANGTUGANG_RESIDENTS = 8236

COMMUNITIES = [
    {
        "community": "tianlun",
        "name": "Tianlun Jincheng",
        "name_zh": "天伦锦城",
        "households": TIANLUN_HOUSEHOLDS,
        "residents": TIANLUN_RESIDENTS,
        "sealed_at": "2020-06-13T03:00:00+08:00",
        # Roads closed; supplies only reach a railway checkpoint ~1 km away.
        "checkpoint": {"name": "railway checkpoint", "name_zh": "铁路卡口",
                       "x_m": 1080, "y_m": -410},
    },
    {
        "community": "huangtugang",
        "name": "Huangtugang Village",
        "name_zh": "黄土岗村",
        "households": HUANGTUGANG_HOUSEHOLDS,
        "residents": HUANGTUGANG_RESIDENTS,
        "sealed_at": "2020-06-14T00:00:00+08:00",
        "checkpoint": {"name": "village gate checkpoint", "name_zh": "村口卡口",
                       "x_m": -150, "y_m": 260},
    },
]


ZH_DIGITS = {1: "一", 2: "二", 3: "三"}


def unit_names(n: int, en: str, zh: str) -> list[dict]:
    """Display names of a building's units (or a bungalow area's lanes), in the
    order of its `units` ids: English and Chinese."""
    return [{"name": en.format(u), "name_zh": zh.format(u)} for u in range(1, n + 1)]


def rng_for(name: str) -> random.Random:
    """An independent deterministic stream per purpose, so editing one part
    of the generator does not reshuffle every other file."""
    return random.Random(f"{SEED}:{name}")


# ---------------------------------------------------------------------------
# Buildings and door slots
# ---------------------------------------------------------------------------
def tianlun_layout() -> tuple[list[dict], list[tuple[str, str, str]]]:
    """16 high-rise buildings on a 4x4 grid, 4-8 units each. Building 7 has 8
    units (its unit 8 was the last one sealed in the story)."""
    rng = rng_for("tianlun-layout")
    buildings = []
    units = []  # [building, unit_ids, floors, doors_per_floor]
    for i in range(1, 17):
        row, col = divmod(i - 1, 4)
        bid = f"tianlun-b{i:02d}"
        n_units = 8 if i == 7 else rng.randint(4, 8)
        doors = rng.choice([2, 2, 3])
        x = 80 + col * 150 + rng.randint(-12, 12)
        y = 60 + row * 110 + rng.randint(-10, 10)
        unit_ids = [f"{bid}-u{u}" for u in range(1, n_units + 1)]
        buildings.append({
            "community": "tianlun", "building": bid, "name": f"Building {i}",
            "name_zh": f"{i}号楼", "x_m": x, "y_m": y, "units": unit_ids,
            "unit_names": unit_names(n_units, "Unit {}", "{}单元"),
        })
        units.append([bid, unit_ids, rng.choice([11, 12, 14, 16, 18]), doors])
    slots = fit_slots(units, TIANLUN_HOUSEHOLDS, rng, max_floors=24)
    return buildings, slots


def huangtugang_layout() -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Three resettlement compounds (Yilanyuan 1, 2, 3) of mid-rise buildings
    plus two bungalow areas whose 'units' are lanes of courtyard houses."""
    rng = rng_for("huangtugang-layout")
    buildings = []
    apt_units = []
    compounds = [(1, 9, (0, 0)), (2, 8, (420, 0)), (3, 7, (0, 380))]
    for c, n_bld, (ox, oy) in compounds:
        for b in range(1, n_bld + 1):
            row, col = divmod(b - 1, 3)
            bid = f"huangtugang-y{c}-b{b:02d}"
            n_units = rng.randint(3, 6)
            x = ox + 40 + col * 95 + rng.randint(-8, 8)
            y = oy + 40 + row * 85 + rng.randint(-8, 8)
            unit_ids = [f"{bid}-u{u}" for u in range(1, n_units + 1)]
            buildings.append({
                "community": "huangtugang", "building": bid,
                "name": f"Yilanyuan {c} Building {b}",
                "name_zh": f"宜兰园{ZH_DIGITS[c]}区{b}号楼",
                "x_m": x, "y_m": y, "units": unit_ids,
                "unit_names": unit_names(n_units, "Unit {}", "{}单元"),
            })
            apt_units.append([bid, unit_ids, rng.choice([6, 6, 9, 11, 12]), 2])

    bungalow_households = 720
    apt_slots = fit_slots(apt_units, HUANGTUGANG_HOUSEHOLDS - bungalow_households, rng,
                          max_floors=14)

    bungalow_slots = []
    lanes = {"east": (9, (760, 260)), "west": (7, (420, 560))}
    lane_ids = []
    for area, (n_lanes, (x, y)) in lanes.items():
        bid = f"huangtugang-bungalow-{area}"
        unit_ids = [f"{bid}-l{n:02d}" for n in range(1, n_lanes + 1)]
        buildings.append({
            "community": "huangtugang", "building": bid,
            "name": f"{area.capitalize()} bungalow area",
            "name_zh": {"east": "东", "west": "西"}[area] + "平房区",
            "x_m": x, "y_m": y, "units": unit_ids,
            "unit_names": unit_names(n_lanes, "Lane {}", "{}巷"),
        })
        lane_ids += [(bid, uid) for uid in unit_ids]
    # Spread the bungalow households over the lanes (house numbers 1..n).
    weights = [rng.randint(30, 60) for _ in lane_ids]
    counts = apportion(bungalow_households, weights)
    for (bid, uid), n in zip(lane_ids, counts):
        for house in range(1, n + 1):
            bungalow_slots.append((bid, uid, str(house)))
    return buildings, apt_slots + bungalow_slots


def fit_slots(buildings, target, rng, max_floors):
    """`buildings` rows are [building, unit_ids, floors, doors_per_floor].
    Add or remove whole floors of a building until the door capacity is at
    most 40 doors above `target`, then leave some flats unoccupied (vacant or
    non-residential) at random so exactly `target` door slots remain."""
    step = lambda b: len(b[1]) * b[3]
    cap = lambda: sum(step(b) * b[2] for b in buildings)
    while cap() < target:
        b = rng.choice([b for b in buildings if b[2] < max_floors])
        b[2] += 1
    while cap() - target > 40:
        b = rng.choice([b for b in buildings if b[2] > 6])
        if cap() - step(b) >= target:
            b[2] -= 1
    slots = []
    for bid, unit_ids, floors, doors in buildings:
        for uid in unit_ids:
            for fl in range(1, floors + 1):
                for d in range(1, doors + 1):
                    slots.append((bid, uid, f"{fl}{d:02d}"))
    drop = set(rng.sample(range(len(slots)), len(slots) - target))
    return [s for i, s in enumerate(slots) if i not in drop]


def apportion(total: int, weights: list[int]) -> list[int]:
    """Largest-remainder split of `total` in proportion to `weights`."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


# ---------------------------------------------------------------------------
# Households
# ---------------------------------------------------------------------------
# head_count distribution before the exact-sum adjustment
HEAD_DIST = {1: 0.14, 2: 0.26, 3: 0.32, 4: 0.16, 5: 0.09, 6: 0.03}
BUNGALOW_HEAD_DIST = {1: 0.22, 2: 0.30, 3: 0.26, 4: 0.13, 5: 0.06, 6: 0.03}


def households_for(community: str, slots, residents: int) -> list[dict]:
    rng = rng_for(f"{community}-households")
    hh = []
    for bid, uid, door in slots:
        dist = BUNGALOW_HEAD_DIST if "-bungalow-" in bid else HEAD_DIST
        hc = rng.choices(list(dist), weights=list(dist.values()))[0]
        hh.append({
            "household": f"{uid}-{int(door):04d}",
            "community": community, "building": bid, "unit": uid, "door": door,
            "head_count": hc, "vulnerabilities": [],
        })
    # Nudge random households by one person until the total is exact.
    diff = residents - sum(h["head_count"] for h in hh)
    while diff:
        h = rng.choice(hh)
        if diff > 0 and h["head_count"] < 6:
            h["head_count"] += 1
            diff -= 1
        elif diff < 0 and h["head_count"] > 1:
            h["head_count"] -= 1
            diff += 1

    n = len(hh)
    idx = list(range(n))
    single = [i for i in idx if hh[i]["head_count"] == 1]
    family = [i for i in idx if hh[i]["head_count"] >= 2]
    pools = {
        "elderly_alone": single,  # lives alone, so head_count 1
        "dialysis": idx,
        "pregnant": family,       # expecting mother lives with family
        "exam_student": family,   # student lives with parents
        "disabled": idx,
    }
    for v in VULNERABILITIES:
        k = round(n * VULN_SHARE[v])
        if v == "dialysis":
            k = max(k, DIALYSIS_MIN)
        for i in rng.sample(pools[v], k):
            hh[i]["vulnerabilities"].append(v)
    for h in hh:
        h["vulnerabilities"].sort(key=VULNERABILITIES.index)

    def door_key(h):
        return (h["building"], h["unit"], int(h["door"]))
    hh.sort(key=door_key)
    return hh


# ---------------------------------------------------------------------------
# Catalogue, partners, tricycles, volunteers
# ---------------------------------------------------------------------------
CATALOGUE = [
    ("veg-pack", "Vegetable package", "package", 5000, "seasonal vegetables, about 5 kg"),
    ("fruit-pack", "Fruit package", "package", 4000, "seasonal fruit, about 4 kg"),
    ("staples-pack", "Rice, flour and oil package", "package", 11000,
     "rice 5 kg, wheat flour 5 kg, cooking oil 1 L"),
    ("eggs", "Eggs", "item", 1800, "tray of 30 eggs"),
    ("milk", "Milk", "item", 3200, "UHT milk, 12 x 250 ml"),
    ("bread", "Bread", "item", 450, "sliced white loaf"),
    ("rice-5kg", "Rice 5 kg", "item", 5000, "polished rice, 5 kg bag"),
    ("flour-5kg", "Wheat flour 5 kg", "item", 5000, "wheat flour, 5 kg bag"),
    ("cooking-oil", "Cooking oil 5 L", "item", 4600, "peanut oil, 5 L bottle"),
    ("watermelon", "Watermelon", "item", 6000, "one whole watermelon (donated gift item)"),
    ("masks", "Face masks", "item", 300, "disposable masks, box of 50"),
    ("parcel", "Courier parcel", "item", 2000,
     "a courier parcel carried in from the checkpoint; nominal weight"),
    ("med-insulin", "Insulin", "medicine", 300, "insulin pens with cold pack, one month"),
    ("med-dialysis-kit", "Dialysis supplies", "medicine", 8800,
     "peritoneal dialysis solution, one day (4 x 2 L bags)"),
    ("med-blood-pressure", "Blood pressure medicine", "medicine", 150,
     "antihypertensive tablets, one month"),
    ("med-general", "General medicine", "medicine", 300,
     "prescription or over-the-counter medicine bought on a resident's behalf"),
]

CATALOGUE_ZH = {
    "veg-pack": "蔬菜套餐", "fruit-pack": "水果套餐", "staples-pack": "米面油套餐",
    "eggs": "鸡蛋", "milk": "牛奶", "bread": "面包", "rice-5kg": "大米 5 公斤",
    "flour-5kg": "面粉 5 公斤", "cooking-oil": "食用油 5 升", "watermelon": "西瓜",
    "masks": "口罩", "parcel": "快递包裹", "med-insulin": "胰岛素",
    "med-dialysis-kit": "透析用品", "med-blood-pressure": "降压药", "med-general": "常用药",
}

PARTNERS = [
    {
        "partner": "yonghui",
        "name": "Yonghui Superstores",
        "name_zh": "永辉超市",
        "communities": ["tianlun", "huangtugang"],
        "stock": {
            "veg-pack": 2600, "fruit-pack": 1200, "staples-pack": 900,
            "eggs": 120, "milk": 600, "bread": 400, "rice-5kg": 500,
            "flour-5kg": 400, "cooking-oil": 450, "watermelon": 400, "masks": 1000,
            # pharmacy counter: small quantities; insulin deliberately scarce
            "med-insulin": 12, "med-dialysis-kit": 30, "med-blood-pressure": 150,
            "med-general": 200,
        },
    },
    {
        "partner": "shuocheng",
        "name": "Shuocheng Agriculture",
        "name_zh": "硕诚农业",
        "communities": ["tianlun", "huangtugang"],
        "stock": {
            "veg-pack": 1800, "fruit-pack": 1500, "staples-pack": 300,
            "eggs": 80, "watermelon": 6500,
        },
    },
]

VOLUNTEER_GROUPS = {  # per community, 60 each
    "rapid_delivery": 20, "supplies": 14, "security": 7, "disinfection": 6,
    "medicine_runs": 5, "liaison": 4, "residents_requests": 4,
}


def vehicles() -> list[dict]:
    """Vehicles that bring goods to a checkpoint: the four cars a volunteer lent to
    Tianlun Jincheng (the story), and each partner's van for each community."""
    out = [{"vehicle": f"tianlun-car-{n}", "community": "tianlun", "name": f"Lent car {n}",
            "name_zh": f"爱心车{n}号"} for n in range(1, 5)]
    for community in ("tianlun", "huangtugang"):
        for partner, zh in (("yonghui", "永辉"), ("shuocheng", "硕诚")):
            out.append({"vehicle": f"{partner}-van-{community}", "community": community,
                        "name": f"{partner.capitalize()} van", "name_zh": f"{zh}货车",
                        "partner": partner})
    return out


def tricycles() -> list[dict]:
    rng = rng_for("tricycles")
    out = []
    # tri-01..12 and tri-21..30 ride in Huangtugang (22: "20+ electric tricycles"),
    # tri-13..20 in Tianlun; the later ten were added after the first twenty, so the first
    # twenty keep their capacities.
    for i in range(1, 31):
        community = "tianlun" if 13 <= i <= 20 else "huangtugang"
        out.append({"tricycle": f"tri-{i:02d}", "community": community,
                    "capacity_g": rng.randrange(120, 201, 10) * 1000})
    return out


def volunteers() -> list[dict]:
    out = []
    for community in ("tianlun", "huangtugang"):
        rng = rng_for(f"{community}-volunteers")
        groups = [g for g, n in VOLUNTEER_GROUPS.items() for _ in range(n)]
        rng.shuffle(groups)
        for i, g in enumerate(groups, 1):
            out.append({"volunteer": f"vol-{community}-{i:03d}", "community": community,
                        "name": f"Volunteer {i:03d}", "group": g})
    return out


# ---------------------------------------------------------------------------
def dump(name: str, rows: list[dict]) -> None:
    text = "[\n" + ",\n".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows
    ) + "\n]\n"
    (OUT / name).write_text(text, encoding="utf-8", newline="\n")


def check_ids(rows, key):
    for r in rows:
        assert ID_RE.match(r[key]), r[key]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    t_b, t_slots = tianlun_layout()
    h_b, h_slots = huangtugang_layout()
    # buildings and households: tianlun first, then huangtugang, each by id
    buildings = (sorted(t_b, key=lambda b: b["building"])
                 + sorted(h_b, key=lambda b: b["building"]))
    households = (households_for("tianlun", t_slots, TIANLUN_RESIDENTS)
                  + households_for("huangtugang", h_slots, HUANGTUGANG_RESIDENTS))
    catalogue = [{"item": i, "name": n, "name_zh": CATALOGUE_ZH[i], "kind": k,
                  "weight_g": w, "contents": c}
                 for i, n, k, w, c in CATALOGUE]
    items = [c["item"] for c in catalogue]
    for p in PARTNERS:  # stock keys in catalogue order
        assert set(p["stock"]) <= set(items), p["partner"]
        p["stock"] = {i: p["stock"][i] for i in items if i in p["stock"]}

    for rows, key in [(COMMUNITIES, "community"), (buildings, "building"),
                      (households, "household"), (catalogue, "item"),
                      (PARTNERS, "partner"), (tricycles(), "tricycle"),
                      (vehicles(), "vehicle"),
                      (volunteers(), "volunteer")]:
        check_ids(rows, key)
        assert len({r[key] for r in rows}) == len(rows), key

    dump("communities.json", COMMUNITIES)
    dump("buildings.json", buildings)
    dump("households.json", households)
    dump("catalogue.json", catalogue)
    dump("partners.json", PARTNERS)
    dump("tricycles.json", tricycles())
    dump("vehicles.json", vehicles())
    dump("volunteers.json", volunteers())

    for c in COMMUNITIES:
        hs = [h for h in households if h["community"] == c["community"]]
        print(f"{c['community']}: {len(hs)} households, "
              f"{sum(h['head_count'] for h in hs)} residents, "
              f"{sum(1 for b in buildings if b['community'] == c['community'])} buildings")


if __name__ == "__main__":
    main()
