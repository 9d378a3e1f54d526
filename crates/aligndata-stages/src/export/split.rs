//! Train / validation / test splits that are stratified by taxonomy cell and never let a
//! near-duplicate leak across splits.
//!
//! Why groups: a test example whose near-twin sits in train measures memorisation, not
//! generalisation. So records are first joined into groups — same normalised text, a MinHash
//! near-duplicate link (Jaccard ≥ the threshold, lower than dedup's default on purpose), or a
//! `duplicate` flag's `other_id` — by union-find, and whole groups are assigned.
//!
//! Why this assignment: groups are visited stratum by stratum (a stratum is a taxonomy cell) in
//! a seeded, content-derived order, and each goes to the split with the largest deficit,
//! `ratio × (assigned + size) − count`, summed over its stratum and over the whole dataset. The
//! stratum term keeps each cell's shares near the ratios; the global term makes the many tiny
//! cells (one or two records) still add up to the right global shares instead of all landing in
//! train. The result depends only on the records and the seed, not on input order.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;

use crate::dedup::{DedupConfig, NearConfig, dedup_texts};

/// The three splits, in file-name order.
pub const SPLIT_NAMES: [&str; 3] = ["train", "validation", "test"];

/// One record as the splitter sees it.
#[derive(Debug, Clone)]
pub struct SplitItem {
    /// Record id.
    pub id: String,
    /// Text compared for near-duplicates.
    pub text: String,
    /// The stratum (taxonomy cell key).
    pub stratum: String,
    /// Ids this record is known to duplicate (from `duplicate` flags).
    pub duplicate_of: Vec<String>,
}

/// How the split went.
#[derive(Debug, Clone, Default)]
pub struct SplitPlan {
    /// Split index (0 train, 1 validation, 2 test) per item, in input order.
    pub assignment: Vec<usize>,
    /// Groups of near-duplicates with more than one member.
    pub duplicate_groups: u64,
    /// Records in those groups.
    pub grouped_records: u64,
}

/// Assigns every item to a split; see the module docs. `ratios` are normalised here.
pub fn assign_splits(
    items: &[SplitItem],
    ratios: [f64; 3],
    near_threshold: f64,
    seed: u64,
) -> Result<SplitPlan> {
    let n = items.len();
    let total: f64 = ratios.iter().sum();
    let ratios = ratios.map(|r| if total > 0.0 { r / total } else { 1.0 / 3.0 });
    let mut uf = UnionFind::new(n);

    let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let config = DedupConfig {
        exact: true,
        near: Some(NearConfig {
            threshold: near_threshold,
            ..NearConfig::default()
        }),
        semantic: None,
        ..DedupConfig::default()
    };
    config.validate()?;
    let decisions = dedup_texts(&texts, &config, None)?;
    for edge in &decisions.edges {
        uf.union(edge.a as usize, edge.b as usize);
    }
    let by_id: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.id.as_str(), i))
        .collect();
    for (i, item) in items.iter().enumerate() {
        for other in &item.duplicate_of {
            if let Some(&j) = by_id.get(other.as_str()) {
                uf.union(i, j);
            }
        }
    }

    // Groups, keyed by root; a group's stratum is its most common member stratum.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        groups.entry(uf.find(i)).or_default().push(i);
    }
    let mut plan = SplitPlan {
        assignment: vec![0; n],
        ..SplitPlan::default()
    };
    let mut by_stratum: BTreeMap<String, Vec<(u64, Vec<usize>)>> = BTreeMap::new();
    for members in groups.into_values() {
        if members.len() > 1 {
            plan.duplicate_groups += 1;
            plan.grouped_records += members.len() as u64;
        }
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for &m in &members {
            *votes.entry(items[m].stratum.as_str()).or_default() += 1;
        }
        let stratum = votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(s, _)| s.to_string())
            .unwrap_or_default();
        let min_id = members
            .iter()
            .map(|&m| items[m].id.as_str())
            .min()
            .unwrap_or("");
        let key = xxhash_rust::xxh3::xxh3_64_with_seed(min_id.as_bytes(), seed);
        by_stratum.entry(stratum).or_default().push((key, members));
    }

    let mut global = [0f64; 3];
    let mut global_n = 0f64;
    for groups in by_stratum.values_mut() {
        groups.sort_by_key(|g| g.0);
        let mut local = [0f64; 3];
        let mut local_n = 0f64;
        for (_, members) in groups.iter() {
            let size = members.len() as f64;
            let mut best = 0;
            let mut best_score = f64::NEG_INFINITY;
            for s in 0..3 {
                if ratios[s] <= 0.0 {
                    continue;
                }
                let score = ratios[s] * (local_n + size) - local[s] + ratios[s] * (global_n + size)
                    - global[s];
                if score > best_score + 1e-9 {
                    best_score = score;
                    best = s;
                }
            }
            local[best] += size;
            global[best] += size;
            local_n += size;
            global_n += size;
            for &m in members {
                plan.assignment[m] = best;
            }
        }
    }
    Ok(plan)
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index is the root, so groups do not depend on link order.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }
}
