//! The in-memory part of dedup: what is kept per record, the three matchers, and the clusters.
//!
//! Records arrive in input order, in batches ([`Deduper::push_batch`]). Per record the engine
//! keeps only a 16-byte exact key in a hash map (first occurrence only), and for each record
//! whose normal form is new (a *representative*): its `num_perm`-byte b-bit MinHash signature
//! (near) and its `dim`-byte quantised embedding (semantic). Exact copies are linked to their
//! first occurrence at once and never signed or embedded.
//!
//! [`Deduper::finish`] links every representative to its most similar *earlier* candidate
//! (near: over LSH buckets; semantic: see [`super::semantic`]), takes connected components of
//! all links (union-find), and names one keeper per component: the earliest record that carried
//! no flag on input, or the earliest record when all did. Every link points from a later record
//! to an earlier one and all ties break on the lower index, so the result depends on the input
//! order only, never on the thread count.

use std::collections::HashMap;

use anyhow::Result;
use rayon::prelude::*;

use aligndata_models::embed::Embedder;

use super::minhash::{MinHasher, band_key, estimate_jaccard};
use super::normalize::{exact_key, normalize_into};
use super::semantic::VectorStore;
use super::{DedupConfig, Method};

/// Earlier members of an LSH bucket a signature is compared with (bounds the work in huge buckets).
pub const NEAR_WINDOW: usize = 64;

/// One verified link from a later record `b` to an earlier record `a` (indices in input order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// The earlier record.
    pub a: u32,
    /// The later record.
    pub b: u32,
    /// Which matcher found it.
    pub method: Method,
    /// 1 for exact, estimated Jaccard for near, cosine for semantic.
    pub score: f32,
}

/// What became of one duplicate record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duplicate {
    /// The record set aside.
    pub record: u32,
    /// Its cluster's keeper.
    pub keeper: u32,
    /// The record it was matched with directly (the keeper, or a record linked to it).
    pub matched: u32,
    /// How it was matched.
    pub method: Method,
    /// The match's score.
    pub score: f32,
}

/// The outcome of [`Deduper::finish`].
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    /// Records seen.
    pub records: u32,
    /// Every verified link, sorted by (later, earlier, method).
    pub edges: Vec<Edge>,
    /// One entry per duplicate, sorted by record index.
    pub duplicates: Vec<Duplicate>,
    /// Clusters of two or more records: (keeper, size), largest first, then by keeper.
    pub clusters: Vec<(u32, u32)>,
    /// Records whose normal form was empty (never compared).
    pub empty: u32,
    /// (bands, rows) used by the near matcher, when it ran.
    pub bands: Option<(usize, usize)>,
    /// "brute force" or "simhash lsh", when the semantic matcher ran.
    pub semantic_search: Option<&'static str>,
}

/// Collects what dedup needs while records stream past; see the module docs.
pub struct Deduper<'e> {
    config: DedupConfig,
    hasher: Option<MinHasher>,
    embedder: Option<&'e dyn Embedder>,
    n: u32,
    empty: u32,
    exact_first: HashMap<u128, u32>,
    edges: Vec<Edge>,
    flagged: Vec<bool>,
    reps: Vec<u32>,
    sigs: Vec<u8>,
    vectors: VectorStore,
}

impl<'e> Deduper<'e> {
    /// A deduper for `config`. Semantic matching runs when `config.semantic` is set; it then
    /// needs `embedder`.
    pub fn new(config: &DedupConfig, embedder: Option<&'e dyn Embedder>) -> Result<Deduper<'e>> {
        config.validate()?;
        if config.semantic.is_some() && embedder.is_none() {
            anyhow::bail!("semantic dedup needs an embedder");
        }
        let hasher = config
            .near
            .as_ref()
            .map(|n| MinHasher::new(n.shingle, n.num_perm, n.seed));
        let dim = if config.semantic.is_some() {
            embedder.map_or(0, |e| e.dim())
        } else {
            0
        };
        Ok(Deduper {
            config: config.clone(),
            hasher,
            embedder: if config.semantic.is_some() {
                embedder
            } else {
                None
            },
            n: 0,
            empty: 0,
            exact_first: HashMap::new(),
            edges: Vec::new(),
            flagged: Vec::new(),
            reps: Vec::new(),
            sigs: Vec::new(),
            vectors: VectorStore::new(dim),
        })
    }

    /// Records pushed so far.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Adds the next records in input order: each text and whether it already carried a flag.
    pub fn push_batch(&mut self, items: &[(&str, bool)]) -> Result<()> {
        if (self.n as u64) + items.len() as u64 > u32::MAX as u64 {
            anyhow::bail!(
                "dedup handles at most {} records per run\nhint: split the input",
                u32::MAX
            );
        }
        // A. Normal forms and exact keys, in parallel.
        let normals: Vec<(String, Option<u128>)> = items
            .par_iter()
            .with_min_len(256)
            .map(|(text, _)| {
                let mut normal = String::new();
                normalize_into(text, &mut normal);
                let key = exact_key(&normal);
                (normal, key)
            })
            .collect();
        // B. Exact matches and representatives, in order.
        let mut new_reps: Vec<usize> = Vec::new();
        for (k, ((_, key), (_, flagged))) in normals.iter().zip(items).enumerate() {
            let idx = self.n + k as u32;
            self.flagged.push(*flagged);
            let Some(key) = key else {
                self.empty += 1;
                continue;
            };
            if self.config.exact {
                match self.exact_first.get(key) {
                    Some(&first) => {
                        self.edges.push(Edge {
                            a: first,
                            b: idx,
                            method: Method::Exact,
                            score: 1.0,
                        });
                        continue;
                    }
                    None => {
                        self.exact_first.insert(*key, idx);
                    }
                }
            }
            new_reps.push(k);
            self.reps.push(idx);
        }
        // C. Signatures of the new representatives, in parallel, straight into the flat store.
        if let Some(hasher) = &self.hasher {
            let p = hasher.num_perm();
            let start = self.sigs.len();
            self.sigs.resize(start + new_reps.len() * p, 0);
            self.sigs[start..]
                .par_chunks_mut(p)
                .zip(new_reps.par_iter())
                .with_min_len(64)
                .for_each_init(Vec::new, |mins, (sig, &k)| {
                    hasher.signature_into(&normals[k].0, mins, sig)
                });
        }
        // D. Embeddings of the new representatives (original text: embedders read case and
        // punctuation).
        if let Some(embedder) = self.embedder {
            let texts: Vec<&str> = new_reps.iter().map(|&k| items[k].0).collect();
            for chunk in texts.chunks(256) {
                for v in embedder.embed(chunk)? {
                    self.vectors.push(&v);
                }
            }
        }
        self.n += items.len() as u32;
        Ok(())
    }

    /// Runs the near and semantic matchers and forms clusters; see the module docs.
    pub fn finish(mut self) -> Decisions {
        let mut decisions = Decisions {
            records: self.n,
            empty: self.empty,
            ..Decisions::default()
        };
        if let (Some(near), Some(hasher)) = (&self.config.near, &self.hasher) {
            let (bands, rows) = near.bands_rows();
            decisions.bands = Some((bands, rows));
            let links = near_links(&self.sigs, hasher.num_perm(), bands, rows, near.threshold);
            self.edges
                .extend(links.into_iter().map(|(a, b, score)| Edge {
                    a: self.reps[a as usize],
                    b: self.reps[b as usize],
                    method: Method::Near,
                    score: score as f32,
                }));
        }
        if let Some(sem) = &self.config.semantic {
            decisions.semantic_search = Some(if self.vectors.len() <= sem.brute_force_limit {
                "brute force"
            } else {
                "simhash lsh"
            });
            let links =
                self.vectors
                    .best_earlier_matches(sem.threshold, sem.brute_force_limit, sem.seed);
            self.edges
                .extend(links.into_iter().map(|(a, b, score)| Edge {
                    a: self.reps[a as usize],
                    b: self.reps[b as usize],
                    method: Method::Semantic,
                    score,
                }));
        }
        self.edges.sort_by_key(|x| (x.b, x.a, x.method));
        decisions.duplicates = clusters(&self.edges, &self.flagged, &mut decisions.clusters);
        decisions.edges = self.edges;
        decisions
    }
}

/// Near links: per band, sort (key, rep) and compare each member with up to [`NEAR_WINDOW`]
/// earlier members of its bucket; keep each rep's best verified earlier match over all bands.
fn near_links(
    sigs: &[u8],
    p: usize,
    bands: usize,
    rows: usize,
    threshold: f64,
) -> Vec<(u32, u32, f64)> {
    let n = sigs.len().checked_div(p).unwrap_or(0);
    let sig = |i: u32| &sigs[i as usize * p..(i as usize + 1) * p];
    let per_band: Vec<Vec<(u32, u32, f64)>> = (0..bands)
        .into_par_iter()
        .map(|band| {
            let mut keys: Vec<(u64, u32)> = (0..n as u32)
                .map(|i| (band_key(sig(i), band, rows), i))
                .collect();
            keys.sort_unstable();
            let mut out = Vec::new();
            for group in keys.chunk_by(|x, y| x.0 == y.0) {
                for (k, &(_, i)) in group.iter().enumerate().skip(1) {
                    let mut best: Option<(u32, f64)> = None;
                    for &(_, j) in &group[k.saturating_sub(NEAR_WINDOW)..k] {
                        let s = estimate_jaccard(sig(i), sig(j));
                        if s >= threshold && best.is_none_or(|(_, b)| s > b) {
                            best = Some((j, s));
                        }
                    }
                    if let Some((j, s)) = best {
                        out.push((j, i, s));
                    }
                }
            }
            out
        })
        .collect();
    let mut all: Vec<(u32, u32, f64)> = per_band.into_iter().flatten().collect();
    all.sort_by(|x, y| x.1.cmp(&y.1).then(y.2.total_cmp(&x.2)).then(x.0.cmp(&y.0)));
    all.dedup_by_key(|e| e.1);
    all
}

fn find(parent: &mut HashMap<u32, u32>, x: u32) -> u32 {
    let mut root = x;
    while let Some(&p) = parent.get(&root) {
        if p == root {
            break;
        }
        root = p;
    }
    // Path compression.
    let mut cur = x;
    while cur != root {
        let next = parent.get(&cur).copied().unwrap_or(root);
        parent.insert(cur, root);
        cur = next;
    }
    root
}

/// Union-find over the edges (the lower index becomes the root, so a root is its component's
/// earliest record), then one keeper per component and the best direct match of each duplicate.
fn clusters(
    edges: &[Edge],
    flagged: &[bool],
    out_clusters: &mut Vec<(u32, u32)>,
) -> Vec<Duplicate> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    for e in edges {
        parent.entry(e.a).or_insert(e.a);
        parent.entry(e.b).or_insert(e.b);
        let (ra, rb) = (find(&mut parent, e.a), find(&mut parent, e.b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            parent.insert(hi, lo);
        }
    }
    let mut members: Vec<u32> = parent.keys().copied().collect();
    members.sort_unstable();
    // Keeper: earliest member without input flags, else the root (earliest member).
    let mut keeper: HashMap<u32, u32> = HashMap::new();
    let mut size: HashMap<u32, u32> = HashMap::new();
    let mut root_of: HashMap<u32, u32> = HashMap::with_capacity(members.len());
    for &m in &members {
        let root = find(&mut parent, m);
        root_of.insert(m, root);
        *size.entry(root).or_default() += 1;
        let unflagged = !flagged.get(m as usize).copied().unwrap_or(false);
        match keeper.get(&root) {
            None => {
                keeper.insert(root, m);
            }
            Some(&k) => {
                let k_flagged = flagged.get(k as usize).copied().unwrap_or(false);
                if k_flagged && unflagged {
                    keeper.insert(root, m);
                }
            }
        }
    }
    // Best direct match per duplicate: an edge to the keeper first, then exact > near > semantic,
    // then the higher score, then the lower index.
    let mut best: HashMap<u32, Duplicate> = HashMap::new();
    for e in edges {
        for (me, other) in [(e.a, e.b), (e.b, e.a)] {
            let root = root_of.get(&me).copied().unwrap_or(me);
            let k = keeper.get(&root).copied().unwrap_or(root);
            if me == k {
                continue;
            }
            let cand = Duplicate {
                record: me,
                keeper: k,
                matched: other,
                method: e.method,
                score: e.score,
            };
            let rank = |d: &Duplicate| {
                (
                    d.matched != d.keeper,
                    d.method,
                    std::cmp::Reverse(ordered(d.score)),
                    d.matched,
                )
            };
            match best.get(&me) {
                Some(cur) if rank(cur) <= rank(&cand) => {}
                _ => {
                    best.insert(me, cand);
                }
            }
        }
    }
    let mut dups: Vec<Duplicate> = best.into_values().collect();
    dups.sort_by_key(|d| d.record);
    let mut cl: Vec<(u32, u32)> = keeper
        .iter()
        .map(|(root, &k)| (k, size.get(root).copied().unwrap_or(1)))
        .collect();
    cl.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    *out_clusters = cl;
    dups
}

/// A total order on f32 scores (for ranking).
fn ordered(x: f32) -> i64 {
    (x as f64 * 1e6).round() as i64
}
