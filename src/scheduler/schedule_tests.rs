//! The policy's schedules over simulated engines and durations ([`super::estimate::simulate`]
//! runs the same priorities and routing as the actor): small cases whose optimal makespan is
//! known (each test's comment argues it), and the issue's matrix against its lower bound.

use std::time::Duration;

use super::durations::{Durations, Sample};
use super::estimate::{simulate, Estimate, SimBase, SimJob, SimState};
use super::policy::Model;
use super::route::{Rules, SlotSnapshot, SlotState};
use super::RunMode;

fn slot(name: &str, max_parallel: usize) -> SlotSnapshot {
    SlotSnapshot {
        name: name.into(),
        arches: vec!["amd64".into()],
        native: vec!["amd64".into()],
        state: SlotState::Up,
        running: 0,
        max_parallel,
        last_error: None,
        speed: 1.0,
        busy: Vec::new(),
    }
}

fn rules(transfer: bool) -> Rules {
    Rules {
        mode: RunMode::Batch,
        max_total: None,
        reconnect_wait: Duration::from_secs(30),
        transfer,
    }
}

/// A model from past builds (cell, engine, secs) of cells not in the plan: the plan's cells
/// are expected as long as similar ones, at each engine's learnt speed. Every engine builds
/// amd64 natively.
fn model(samples: &[(&str, &str, f64)]) -> Model {
    let d = Durations::from_samples(samples.iter().map(|(c, e, s)| Sample {
        cell: c.to_string(),
        engine: e.to_string(),
        secs: *s,
    }));
    Model::learn(&d, |_| Some("amd64"))
}

/// Engine `m` at speed 1.0 and `a` at 0.75: bases 3 s and compilers 2 s on m.
fn m_and_a() -> Model {
    model(&[
        ("x/opam/amd64", "m", 3.0),
        ("y/opam/amd64", "a", 4.0),
        ("x/5.4/amd64", "m", 2.0),
        ("y/5.4/amd64", "a", 8.0 / 3.0),
    ])
}

/// Cell names of `distros` distros, each a base and `compilers` compiler cells, in plan
/// order (bases first).
fn names(distros: usize, compilers: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let bases = (0..distros).map(|d| format!("d{d}/opam/amd64")).collect();
    let comps = (0..distros)
        .map(|d| {
            (0..compilers)
                .map(|c| format!("d{d}/5.{c}/amd64"))
                .collect()
        })
        .collect();
    (bases, comps)
}

fn two_level<'a>(bases: &'a [String], comps: &'a [Vec<String>]) -> Vec<SimJob<'a>> {
    let mut jobs: Vec<SimJob> = bases
        .iter()
        .map(|b| SimJob {
            cell: b,
            arch: "amd64",
            base: None,
            state: SimState::Pending,
        })
        .collect();
    for (d, cs) in comps.iter().enumerate() {
        for c in cs {
            jobs.push(SimJob {
                cell: c,
                arch: "amd64",
                base: Some(SimBase::Job(d)),
                state: SimState::Pending,
            });
        }
    }
    jobs
}

fn close(est: &Estimate, want: f64) {
    assert!(
        (est.secs - want).abs() < 1e-6,
        "makespan {} != {want}: {:?}",
        est.secs,
        est.schedule
    );
}

#[test]
fn pinned_bases_go_to_the_faster_engine() {
    // Two distros, a base of 3 s with 3 compilers of 2 s each (on m; a takes 4/3 as long).
    // Compilers stay with their base. A base on a means its 3 compilers on a too: 4 + 2 x
    // 2.67 = 9.33 s. Both bases on m: 3 s, then 6 compilers, 2 at a time: 9 s, the optimum.
    // (Least loaded first, the old rule, put the second base on a: 9.33 s.)
    let (b, c) = names(2, 3);
    let jobs = two_level(&b, &c);
    let slots = [slot("a", 2), slot("m", 2)];
    let est = simulate(&slots, &jobs, &rules(false), &m_and_a());
    close(&est, 9.0);
    assert!(est.schedule[..2].iter().all(|s| s.unwrap().slot == 1));
}

#[test]
fn a_transfer_wins_when_it_is_cheap() {
    // The same with moves of a base costing 0.5 s. Both bases end on m at 3 s (on a they
    // would end at 4). Of the 6 compilers, m builds 2 by 5 s and 4 by 7 s; a can end 2 by
    // 3 + 0.5 + 2.67 = 6.17 s and no more before 8.8 s. So at best m builds 4 and a 2: 7 s.
    let (b, c) = names(2, 3);
    let jobs = two_level(&b, &c);
    let slots = [slot("a", 2), slot("m", 2)];
    let mut m = m_and_a();
    m.transfer_rate = 100e6;
    for base in &b {
        m.sizes.insert(base.clone(), 50_000_000);
    }
    let est = simulate(&slots, &jobs, &rules(true), &m);
    close(&est, 7.0);
    let on_a = est.schedule[2..]
        .iter()
        .filter(|s| s.unwrap().slot == 0)
        .count();
    assert_eq!(on_a, 2, "{:?}", est.schedule);
    // A move of 10 s loses to waiting for m: the pinned optimum again.
    for base in &b {
        m.sizes.insert(base.clone(), 1_000_000_000);
    }
    close(&simulate(&slots, &jobs, &rules(true), &m), 9.0);
}

#[test]
fn the_chain_goes_first() {
    // One engine, 2 at a time. Two leaves of 4 s come first in plan order, then a base of
    // 2 s with one compiler of 4 s. In plan order: 4 + 2 + 4 = 10 s. Optimum 8 s: 14 s of
    // work in 7 s would leave no place idle, but the compiler cannot start before 2 s and
    // only 4 s pieces remain to fill the base's place around it. Base first: 8 s.
    let m = model(&[
        ("x/opam/amd64", "m", 2.0),
        ("x/5.4/amd64", "m", 4.0),
        ("x/archive/amd64", "m", 4.0),
    ]);
    let pending = |cell, base| SimJob {
        cell,
        arch: "amd64",
        base,
        state: SimState::Pending,
    };
    let jobs = [
        pending("l1/archive/amd64", None),
        pending("l2/archive/amd64", None),
        pending("d/opam/amd64", None),
        pending("d/5.4/amd64", Some(SimBase::Job(2))),
    ];
    let est = simulate(&[slot("m", 2)], &jobs, &rules(false), &m);
    close(&est, 8.0);
    assert_eq!(est.schedule[2].unwrap().start, 0.0, "the base starts first");
}

#[test]
fn a_place_stays_idle_for_a_much_faster_engine() {
    // Two cells of 2 s; engine f (speed 1, one at a time) and s (speed 0.25). Both on f:
    // 4 s; one on s: 8 s. Optimum 4 s: the second waits for f while s stays idle.
    let m = model(&[("x/5.4/amd64", "f", 2.0), ("y/5.4/amd64", "s", 8.0)]);
    let pending = |cell| SimJob {
        cell,
        arch: "amd64",
        base: None,
        state: SimState::Pending,
    };
    let jobs = [pending("d1/5.4/amd64"), pending("d2/5.4/amd64")];
    let est = simulate(&[slot("s", 1), slot("f", 1)], &jobs, &rules(false), &m);
    close(&est, 4.0);
    assert!(est.schedule.iter().all(|s| s.unwrap().slot == 1));
}

#[test]
fn affinity_breaks_ties_but_never_delays() {
    // Two equal engines: a cell whose last success ran on b goes to b; when b is busy
    // for longer than the cell takes, it goes to a.
    let mut m = model(&[("x/5.4/amd64", "a", 2.0), ("y/5.4/amd64", "b", 2.0)]);
    m.last_engine.insert("d/5.4/amd64".into(), "b".into());
    let jobs = [SimJob {
        cell: "d/5.4/amd64",
        arch: "amd64",
        base: None,
        state: SimState::Pending,
    }];
    let slots = [slot("a", 1), slot("b", 1)];
    assert_eq!(
        simulate(&slots, &jobs, &rules(false), &m).schedule[0]
            .unwrap()
            .slot,
        1
    );
    let busy = [
        SimJob {
            cell: "e/5.4/amd64",
            arch: "amd64",
            base: None,
            state: SimState::Running {
                slot: 1,
                elapsed: 0.0,
            },
        },
        jobs[0].clone(),
    ];
    let est = simulate(&slots, &busy, &rules(false), &m);
    assert_eq!(est.schedule[1].unwrap().slot, 0);
    close(&est, 2.0);
}

#[test]
fn the_issues_matrix_is_near_its_lower_bound() {
    // 8 distros, bases 3 s and 3 compilers of 2 s each on m, a at 0.75, 2 places each.
    // Lower bound: work 8 x 3 + 24 x 2 = 72 s over a capacity of 2 + 2 x 0.75 = 3.5 engine
    // speeds: 20.6 s (the critical path is 5 s). Moves of the small fixture images: 0.05 s.
    let (b, c) = names(8, 3);
    let jobs = two_level(&b, &c);
    let slots = [slot("a", 2), slot("m", 2)];
    let mut m = m_and_a();
    for base in &b {
        m.sizes.insert(base.clone(), 5_000_000);
    }
    let bound = 72.0 / 3.5;
    let with = simulate(&slots, &jobs, &rules(true), &m).secs;
    let without = simulate(&slots, &jobs, &rules(false), &m).secs;
    assert!(with / bound <= 1.10, "with transfer: {with} s vs {bound} s");
    assert!(with <= without, "{with} > {without}");
}
