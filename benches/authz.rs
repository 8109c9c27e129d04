//! One authorization decision: the shipped Cedar policies, a focal point and
//! an admin asking about organisations in and out of their reach.
//!
//! Run: `cargo bench --bench authz` (prints p50, p99 and mean over 200 000
//! decisions after a warm-up). Entities are built per decision, as in
//! production; loading the organisation chain from the database is not
//! included (see `benches/login.rs` for whole requests).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark: a broken setup should stop it loudly, and it reports on stdout"
)]

use std::time::Instant;

use caseguard::authz::{Action, OrgChain, OrgNode, Policies, Principal};

fn node(id: &str, kind: &str, parent: Option<&str>) -> OrgNode {
    OrgNode {
        id: id.to_owned(),
        kind: kind.to_owned(),
        parent_id: parent.map(str::to_owned),
    }
}

fn chain(ids: &[(&str, &str)]) -> OrgChain {
    let nodes = ids
        .iter()
        .enumerate()
        .map(|(i, (id, kind))| node(id, kind, ids.get(i + 1).map(|(p, _)| *p)))
        .collect();
    OrgChain(nodes)
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn main() {
    let policies = Policies::load(None).expect("shipped policies");
    let school = chain(&[
        ("school", "school"),
        ("commune", "area"),
        ("district", "area"),
        ("province", "area"),
    ]);
    let other_school = chain(&[
        ("school-2", "school"),
        ("commune-2", "area"),
        ("district-2", "area"),
        ("province", "area"),
    ]);
    let district = chain(&[("district", "area"), ("province", "area")]);
    let focal = Principal {
        user_id: "focal".into(),
        role: "focal_point".into(),
        org_chain: school.clone(),
    };
    let admin = Principal {
        user_id: "admin".into(),
        role: "admin".into(),
        org_chain: district,
    };
    let cases: Vec<(&Principal, Action, &OrgChain, bool)> = vec![
        (&focal, Action::OrgRead, &school, true),
        (&focal, Action::UserList, &school, false),
        (&admin, Action::UserCreate, &school, true),
        (&admin, Action::UserCreate, &other_school, false),
    ];
    for (principal, action, resource, expected) in &cases {
        assert_eq!(
            policies.decide(principal, *action, resource),
            *expected,
            "{action:?}"
        );
    }
    let rounds = 200_000;
    for i in 0..20_000 {
        let (p, a, r, _) = cases[i % cases.len()];
        std::hint::black_box(policies.decide(p, a, r));
    }
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let (p, a, r, _) = cases[i % cases.len()];
        let start = Instant::now();
        std::hint::black_box(policies.decide(p, a, r));
        samples.push(start.elapsed().as_nanos());
    }
    samples.sort_unstable();
    let mean = samples.iter().sum::<u128>() / samples.len() as u128;
    println!(
        "authorization decision over {rounds} runs: p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs",
        percentile(&samples, 0.50) as f64 / 1000.0,
        percentile(&samples, 0.99) as f64 / 1000.0,
        mean as f64 / 1000.0
    );
}
