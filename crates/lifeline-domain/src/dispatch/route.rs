//! Routes: the order in which a tricycle rides a run's buildings, from the checkpoint and
//! back. Pure and deterministic (integer metres, no randomness), so a replay of the same
//! plan routes the same way.
//!
//! The constraint users need: a run's most urgent doors come first. Buildings are ridden
//! in tiers by the most urgent order each one gets on this run (urgent, then priority, then
//! routine); within a tier the route is the shortest this finds, and the last tier ends
//! back at the checkpoint. The planner's own order (buildings in the order it loaded them)
//! is the starting point, so a route is never longer than it.
//!
//! How: two starting tours (the planner's order, and nearest neighbour within each tier),
//! each improved by 2-opt moves (reverse a stretch of one tier) until no move shortens it;
//! the shorter wins. A run visits a handful of buildings, so this is exact or close to it
//! and costs microseconds.

use lifeline_events::{Priority, Stop};
use serde::{Deserialize, Serialize};

/// A place on a community's grid, metres east and north of its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub x_m: i32,
    pub y_m: i32,
}

/// The straight-line distance between two places, rounded to the nearest metre. Integer
/// arithmetic, so every machine and every replay gets the same metres.
pub fn leg_m(a: Point, b: Point) -> u64 {
    let dx = (i64::from(a.x_m) - i64::from(b.x_m)).unsigned_abs();
    let dy = (i64::from(a.y_m) - i64::from(b.y_m)).unsigned_abs();
    let squared = u128::from(dx) * u128::from(dx) + u128::from(dy) * u128::from(dy);
    let root = squared.isqrt();
    // sqrt(s) rounds up when s > root² + root (then s >= (root + ½)² for whole s).
    let rounded = if squared - root * root > root {
        root + 1
    } else {
        root
    };
    u64::try_from(rounded).unwrap_or(u64::MAX)
}

/// The length of a tour from `gate` through `points` in order and back to `gate`.
pub fn tour_m(gate: Point, points: impl IntoIterator<Item = Point>) -> u64 {
    let mut at = gate;
    let mut total = 0;
    for point in points {
        total += leg_m(at, point);
        at = point;
    }
    total + leg_m(at, gate)
}

/// One building a run visits: where it is and the most urgent order it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    pub at: Point,
    pub priority: Priority,
}

/// The order to ride `visits` (given in the planner's order): a permutation of their
/// indices, more urgent tiers first, never longer than the given order.
pub fn route(gate: Point, visits: &[Visit]) -> Vec<usize> {
    let given = tiered(visits, (0..visits.len()).collect());
    let nearest = nearest_neighbour(gate, visits, &given);
    let length = |order: &[usize]| tour_m(gate, order.iter().map(|&i| visits[i].at));
    let mut best: Option<(u64, Vec<usize>)> = None;
    for start in [given, nearest] {
        let improved = two_opt(gate, visits, start);
        let improved_m = length(&improved);
        if best.as_ref().is_none_or(|(best_m, _)| improved_m < *best_m) {
            best = Some((improved_m, improved));
        }
    }
    best.map(|(_, order)| order).unwrap_or_default()
}

/// `order` stably sorted into tiers, most urgent first.
fn tiered(visits: &[Visit], mut order: Vec<usize>) -> Vec<usize> {
    order.sort_by_key(|&i| std::cmp::Reverse(visits[i].priority));
    order
}

/// Within each tier of `tiered`, always the nearest building not yet ridden (ties: the one
/// the planner loaded first).
fn nearest_neighbour(gate: Point, visits: &[Visit], tiered: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(tiered.len());
    let mut at = gate;
    for tier in tiers(visits, tiered) {
        let mut left: Vec<usize> = tier.to_vec();
        while !left.is_empty() {
            let (pick, _) = left
                .iter()
                .enumerate()
                .min_by_key(|(_, i)| leg_m(at, visits[**i].at))
                .expect("not empty");
            let chosen = left.remove(pick);
            at = visits[chosen].at;
            out.push(chosen);
        }
    }
    out
}

/// The tiers of a tiered order, as slices.
fn tiers<'a>(visits: &[Visit], tiered: &'a [usize]) -> Vec<&'a [usize]> {
    tiered
        .chunk_by(|a, b| visits[*a].priority == visits[*b].priority)
        .collect()
}

/// Reverses stretches within one tier while that shortens the whole tour. Each accepted
/// move strictly shortens it, so this ends, and never lengthens what it was given.
fn two_opt(gate: Point, visits: &[Visit], mut order: Vec<usize>) -> Vec<usize> {
    let point = |order: &[usize], position: usize| -> Point {
        // Position 0 and len+1 are the gate; 1..=len the buildings.
        if position == 0 || position > order.len() {
            gate
        } else {
            visits[order[position - 1]].at
        }
    };
    loop {
        let mut improved = false;
        let mut start = 0;
        for tier in tiers(visits, &order.clone()) {
            let end = start + tier.len();
            // Reverse order[i..=j] (positions i+1..=j+1) within [start, end).
            for i in start..end {
                for j in i + 1..end {
                    let before = leg_m(point(&order, i), point(&order, i + 1))
                        + leg_m(point(&order, j + 1), point(&order, j + 2));
                    let after = leg_m(point(&order, i), point(&order, j + 1))
                        + leg_m(point(&order, i + 1), point(&order, j + 2));
                    if after < before {
                        order[i..=j].reverse();
                        improved = true;
                    }
                }
            }
            start = end;
        }
        if !improved {
            return order;
        }
    }
}

/// A run's stops reordered along its route, with the route's length: the stops of each
/// building stay together in the order they came (unit, then household), the buildings
/// follow [`route`]. `None` (and the stops as given) when the gate or any building's place
/// is not known.
pub fn route_stops(
    gate: Option<Point>,
    stops: Vec<Stop>,
    place: impl Fn(&str) -> Option<Point>,
    priority: impl Fn(&Stop) -> Priority,
) -> (Vec<Stop>, Option<u32>) {
    let Some(gate) = gate else {
        return (stops, None);
    };
    if stops.iter().any(|stop| place(&stop.building).is_none()) {
        return (stops, None);
    }
    // Buildings in the order their first stop comes, each with its stops.
    let mut buildings: Vec<(Visit, Vec<Stop>)> = Vec::new();
    for stop in stops {
        let urgency = priority(&stop);
        match buildings
            .iter_mut()
            .find(|(_, group)| group[0].building == stop.building)
        {
            Some((visit, group)) => {
                visit.priority = visit.priority.max(urgency);
                group.push(stop);
            }
            None => {
                let visit = Visit {
                    at: place(&stop.building).unwrap_or(gate),
                    priority: urgency,
                };
                buildings.push((visit, vec![stop]));
            }
        }
    }
    let visits: Vec<Visit> = buildings.iter().map(|(visit, _)| *visit).collect();
    let order = route(gate, &visits);
    let distance = tour_m(gate, order.iter().map(|&i| visits[i].at));
    let mut groups: Vec<Option<Vec<Stop>>> = buildings
        .into_iter()
        .map(|(_, group)| Some(group))
        .collect();
    let stops = order
        .iter()
        .flat_map(|&i| groups[i].take().unwrap_or_default())
        .collect();
    (stops, Some(u32::try_from(distance).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(x_m: i32, y_m: i32) -> Point {
        Point { x_m, y_m }
    }

    fn visit(x_m: i32, y_m: i32, priority: Priority) -> Visit {
        Visit {
            at: at(x_m, y_m),
            priority,
        }
    }

    #[test]
    fn legs_are_straight_lines_in_whole_metres() {
        assert_eq!(leg_m(at(0, 0), at(3, 4)), 5);
        assert_eq!(leg_m(at(0, 0), at(1, 1)), 1);
        assert_eq!(leg_m(at(-150, 260), at(-150, 260)), 0);
        assert_eq!(tour_m(at(0, 0), [at(3, 4)]), 10);
        assert_eq!(tour_m(at(0, 0), []), 0);
    }

    #[test]
    fn a_zig_zag_is_straightened() {
        // The planner loaded them far, near, far, near along one street: 1,400 m; out to
        // the far end and back is 800 m whichever way round.
        let visits = [
            visit(400, 0, Priority::Routine),
            visit(100, 0, Priority::Routine),
            visit(300, 0, Priority::Routine),
            visit(200, 0, Priority::Routine),
        ];
        let order = route(at(0, 0), &visits);
        let length = tour_m(at(0, 0), order.iter().map(|&i| visits[i].at));
        assert_eq!(length, 800);
        assert!(length < tour_m(at(0, 0), visits.iter().map(|v| v.at)));
    }

    #[test]
    fn urgent_doors_come_first_even_when_far() {
        let visits = [
            visit(100, 0, Priority::Routine),
            visit(900, 0, Priority::Urgent),
            visit(200, 0, Priority::Priority),
        ];
        let order = route(at(0, 0), &visits);
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn stops_keep_their_building_together_and_report_the_distance() {
        let stop = |building: &str, household: &str| Stop {
            building: building.to_owned(),
            unit: format!("{building}-u1"),
            household: household.to_owned(),
            orders: vec![format!("o-{household}")],
        };
        let stops = vec![stop("far", "f1"), stop("near", "n1"), stop("far", "f2")];
        let place = |building: &str| match building {
            "far" => Some(at(500, 0)),
            "near" => Some(at(100, 0)),
            _ => None,
        };
        let (routed, distance) =
            route_stops(Some(at(0, 0)), stops.clone(), place, |_| Priority::Routine);
        let households: Vec<&str> = routed.iter().map(|s| s.household.as_str()).collect();
        // Either way round is 1,000 m; the planner's order stays when nothing is shorter.
        assert_eq!(households, ["f1", "f2", "n1"]);
        assert_eq!(distance, Some(1000));

        let (unrouted, none) = route_stops(None, stops.clone(), place, |_| Priority::Routine);
        assert_eq!((unrouted, none), (stops.clone(), None));
        let unknown = |_: &str| None;
        let (unrouted, none) = route_stops(Some(at(0, 0)), stops.clone(), unknown, |_| {
            Priority::Routine
        });
        assert_eq!((unrouted, none), (stops, None));
    }

    fn priority() -> impl Strategy<Value = Priority> {
        prop_oneof![
            Just(Priority::Routine),
            Just(Priority::Priority),
            Just(Priority::Urgent)
        ]
    }

    fn visits() -> impl Strategy<Value = Vec<Visit>> {
        prop::collection::vec(
            (-1500..1500i32, -1500..1500i32, priority()).prop_map(|(x, y, p)| visit(x, y, p)),
            0..12,
        )
    }

    proptest! {
        /// Every building once; urgent tiers first; never longer than the planner's order
        /// (tiered the same way); the same answer every time.
        #[test]
        fn a_route_visits_each_stop_once_and_is_no_longer_than_the_naive_order(
            gate in (-1500..1500i32, -1500..1500i32).prop_map(|(x, y)| at(x, y)),
            visits in visits(),
        ) {
            let order = route(gate, &visits);
            let mut seen = order.clone();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..visits.len()).collect::<Vec<_>>());
            prop_assert!(order
                .windows(2)
                .all(|pair| visits[pair[0]].priority >= visits[pair[1]].priority));
            let naive = tiered(&visits, (0..visits.len()).collect());
            let routed_m = tour_m(gate, order.iter().map(|&i| visits[i].at));
            let naive_m = tour_m(gate, naive.iter().map(|&i| visits[i].at));
            prop_assert!(routed_m <= naive_m, "routed {} > naive {}", routed_m, naive_m);
            prop_assert_eq!(route(gate, &visits), order);
        }
    }
}
