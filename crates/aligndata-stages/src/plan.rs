//! Plans: how many synthetic inputs each taxonomy cell gets.
//!
//! Why a separate step: the plan is where control over synthetic data lives. Writing it to a
//! file (`plan.json`) lets a user read, edit and version it before spending model time, and lets
//! a later round (the bandit policy) write one instead.
//!
//! How quotas are set:
//! - Cells are the taxonomy's allowed cells (exclusions honoured). Explicit `--cell KEY=N`
//!   counts are taken first; the rest of the budget is spread over the other cells.
//! - When the budget covers the grid, every cell gets a share: evenly (the default), or in
//!   proportion to the cell weight (the product of its values' weights) after one each, using
//!   largest-remainder rounding so quotas always sum to the budget exactly.
//! - When the grid is larger than the budget, cells are *sampled*, one input each, by a greedy
//!   covering pick: each step takes the cell that adds the most uncovered values (worth far
//!   more than anything else), then the most rarely seen value pairs, then (with
//!   `proportional`) the heaviest cell, ties broken by a seeded hash. So every value of every
//!   dimension is covered as soon as the budget allows it (a budget of at least the largest
//!   dimension's size is enough when exclusions leave each value a cell), and pairs spread as
//!   evenly as the budget allows. Deterministic for a seed.
//!
//! The greedy pick scans every allowed cell per step: O(budget × cells × dimensions²). That is
//! instant for grids of a few thousand cells; grids of millions want candidate sampling (left
//! for later, see the issue).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use aligndata_core::{Cell, Taxonomy};

/// Largest allowed-cell grid a plan enumerates.
pub const MAX_GRID: u64 = 2_000_000;

/// What to plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanConfig {
    /// Total inputs.
    pub count: u64,
    /// Spread by cell weight instead of evenly.
    pub proportional: bool,
    /// Explicit counts for named cells (`dim=value|dim=value...`), taken out of `count`.
    pub explicit: Vec<(String, u64)>,
    /// Seed for tie-breaking when cells are sampled.
    pub seed: u64,
}

/// One cell's quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCell {
    /// The cell key, `dim=value|...`.
    pub cell: String,
    /// Inputs to generate for it.
    pub quota: u64,
    /// The cell weight (product of its values' weights).
    pub weight: f64,
    /// True when the quota was given explicitly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explicit: bool,
}

/// A plan: `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The taxonomy's name.
    pub taxonomy: String,
    /// Sum of quotas.
    pub total: u64,
    /// `even` or `proportional`.
    pub mode: String,
    /// Seed used for sampling.
    pub seed: u64,
    /// Allowed cells in the taxonomy.
    pub grid_cells: u64,
    /// True when the grid was larger than the budget and cells were sampled.
    pub sampled: bool,
    /// Cells with a quota > 0, in the taxonomy's cell order.
    pub cells: Vec<PlanCell>,
    /// `dim=value` pairs no planned cell covers (empty when the budget allowed full coverage).
    #[serde(default)]
    pub uncovered_values: Vec<String>,
}

/// The taxonomy's allowed cells, refused when there are none or too many to enumerate.
fn enumerable_cells(taxonomy: &Taxonomy) -> Result<Vec<Cell>> {
    let grid = taxonomy.allowed_cell_count();
    if grid == 0 {
        bail!(
            "the taxonomy has no allowed cells\nhint: check its exclusions with `aligndata taxonomy show`"
        );
    }
    if grid > MAX_GRID {
        bail!(
            "the taxonomy has {grid} allowed cells, more than a plan enumerates ({MAX_GRID})\nhint: add exclusions or merge values"
        );
    }
    Ok(taxonomy.allowed_cells().collect())
}

/// Builds a plan for `taxonomy`.
pub fn build_plan(taxonomy: &Taxonomy, config: &PlanConfig) -> Result<Plan> {
    let cells = enumerable_cells(taxonomy)?;
    let index: HashMap<&Cell, usize> = cells.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let mut quotas = vec![0u64; cells.len()];
    let mut explicit = vec![false; cells.len()];

    let mut explicit_total = 0u64;
    for (key, n) in &config.explicit {
        let cell = taxonomy
            .parse_cell_key(key)
            .with_context(|| format!("--cell {key}: not a cell of this taxonomy\nhint: name every dimension once, e.g. {}", example_key(taxonomy, &cells)))?;
        let Some(&i) = index.get(&cell) else {
            bail!("--cell {key}: an exclusion removes this cell");
        };
        if explicit[i] {
            bail!("--cell {key}: named twice");
        }
        explicit[i] = true;
        quotas[i] = *n;
        explicit_total = explicit_total.saturating_add(*n);
    }
    if explicit_total > config.count {
        bail!(
            "explicit --cell counts sum to {explicit_total}, more than the total {}\nhint: raise --count",
            config.count
        );
    }
    let rest = config.count - explicit_total;
    let free: Vec<usize> = (0..cells.len()).filter(|&i| !explicit[i]).collect();
    let weights: Vec<f64> = cells.iter().map(|c| taxonomy.cell_weight(c)).collect();

    let sampled = (rest as usize) < free.len() && rest > 0;
    if rest > 0 && !free.is_empty() {
        if sampled {
            for i in greedy_cover(
                taxonomy,
                &cells,
                &free,
                &explicit,
                rest as usize,
                &weights,
                config,
            ) {
                quotas[i] += 1;
            }
        } else {
            let n = free.len() as u64;
            let (base, extra) = if config.proportional {
                (1, rest - n)
            } else {
                (rest / n, rest % n)
            };
            let shares: Vec<f64> = if config.proportional {
                free.iter().map(|&i| weights[i]).collect()
            } else {
                vec![1.0; free.len()]
            };
            let extras = largest_remainder(&shares, extra, config.seed);
            for (k, &i) in free.iter().enumerate() {
                quotas[i] += base + extras[k];
            }
        }
    }

    let mut covered: Vec<Vec<bool>> = taxonomy
        .dimensions
        .iter()
        .map(|d| vec![false; d.values.len()])
        .collect();
    let mut planned = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        if quotas[i] == 0 {
            continue;
        }
        for (d, &v) in cell.0.iter().enumerate() {
            covered[d][v] = true;
        }
        planned.push(PlanCell {
            cell: taxonomy.cell_key(cell),
            quota: quotas[i],
            weight: weights[i],
            explicit: explicit[i],
        });
    }
    let mut uncovered_values = Vec::new();
    for (d, dim) in taxonomy.dimensions.iter().enumerate() {
        for (v, value) in dim.values.iter().enumerate() {
            if !covered[d][v] {
                uncovered_values.push(format!("{}={}", dim.id, value.id));
            }
        }
    }
    Ok(Plan {
        taxonomy: taxonomy.name.clone(),
        total: planned.iter().map(|c| c.quota).sum(),
        mode: if config.proportional {
            "proportional"
        } else {
            "even"
        }
        .to_string(),
        seed: config.seed,
        grid_cells: cells.len() as u64,
        sampled,
        cells: planned,
        uncovered_values,
    })
}

fn example_key(taxonomy: &Taxonomy, cells: &[Cell]) -> String {
    cells
        .first()
        .map(|c| taxonomy.cell_key(c))
        .unwrap_or_default()
}

/// Splits `extra` units over `shares` by largest remainder; ties go by a seeded hash so no
/// cell order is favoured.
fn largest_remainder(shares: &[f64], extra: u64, seed: u64) -> Vec<u64> {
    let total: f64 = shares.iter().sum();
    if shares.is_empty() || extra == 0 || total <= 0.0 {
        return vec![0; shares.len()];
    }
    let exact: Vec<f64> = shares.iter().map(|s| s / total * extra as f64).collect();
    let mut out: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let given: u64 = out.iter().sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(tie(seed, a).cmp(&tie(seed, b)))
    });
    for &i in order.iter().take(extra.saturating_sub(given) as usize) {
        out[i] += 1;
    }
    out
}

fn tie(seed: u64, i: usize) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&(i as u64).to_le_bytes(), seed)
}

/// Picks `budget` distinct cells among `free`, greedily maximising new value coverage, then
/// rare pairs. Explicit cells count as already covering what they cover.
fn greedy_cover(
    taxonomy: &Taxonomy,
    cells: &[Cell],
    free: &[usize],
    explicit: &[bool],
    budget: usize,
    weights: &[f64],
    config: &PlanConfig,
) -> Vec<usize> {
    let dims = taxonomy.dimensions.len();
    let mut value_seen: Vec<Vec<u64>> = taxonomy
        .dimensions
        .iter()
        .map(|d| vec![0; d.values.len()])
        .collect();
    let mut pair_seen: HashMap<(usize, usize, usize, usize), u64> = HashMap::new();
    let mark = |cell: &Cell, value_seen: &mut Vec<Vec<u64>>, pair_seen: &mut HashMap<_, u64>| {
        for a in 0..dims {
            value_seen[a][cell.0[a]] += 1;
            for b in a + 1..dims {
                *pair_seen.entry((a, cell.0[a], b, cell.0[b])).or_insert(0) += 1;
            }
        }
    };
    for (i, cell) in cells.iter().enumerate() {
        if explicit[i] {
            mark(cell, &mut value_seen, &mut pair_seen);
        }
    }
    let max_w = free
        .iter()
        .map(|&i| weights[i])
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut taken = vec![false; cells.len()];
    let mut picked = Vec::with_capacity(budget);
    for _ in 0..budget {
        let mut best: Option<(f64, u64, usize)> = None;
        for &i in free {
            if taken[i] {
                continue;
            }
            let cell = &cells[i];
            let mut new_values = 0u64;
            let mut pair_score = 0.0;
            let mut value_score = 0.0;
            for a in 0..dims {
                let seen = value_seen[a][cell.0[a]];
                if seen == 0 {
                    new_values += 1;
                }
                value_score += 1.0 / (1.0 + seen as f64);
                for b in a + 1..dims {
                    let n = pair_seen
                        .get(&(a, cell.0[a], b, cell.0[b]))
                        .copied()
                        .unwrap_or(0);
                    pair_score += 1.0 / (1.0 + n as f64);
                }
            }
            let mut score = new_values as f64 * 1e6 + pair_score * 10.0 + value_score;
            if config.proportional {
                score *= 0.5 + 0.5 * weights[i] / max_w;
            }
            let t = tie(config.seed, i);
            let better = match best {
                None => true,
                Some((s, bt, _)) => score > s || (score == s && t < bt),
            };
            if better {
                best = Some((score, t, i));
            }
        }
        let Some((_, _, i)) = best else { break };
        taken[i] = true;
        mark(&cells[i], &mut value_seen, &mut pair_seen);
        picked.push(i);
    }
    picked
}

impl Plan {
    /// Reads a `plan.json`.
    pub fn load(path: &Path) -> Result<Plan> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read plan {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a plan.json", path.display()))
    }

    /// Writes it atomically as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        aligndata_dataset::write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Resolves the plan's cells against `taxonomy`: errors name cells that are unknown or
    /// excluded (a plan written for another version of the taxonomy).
    pub fn resolve(&self, taxonomy: &Taxonomy) -> Result<Vec<(Cell, u64)>> {
        let mut out = Vec::with_capacity(self.cells.len());
        for c in &self.cells {
            let cell = taxonomy.parse_cell_key(&c.cell).with_context(|| {
                format!(
                    "plan cell {} is not a cell of taxonomy {}",
                    c.cell, taxonomy.name
                )
            })?;
            if !taxonomy.is_allowed(&cell) {
                bail!(
                    "plan cell {} is excluded by the taxonomy's rules\nhint: rebuild the plan with `aligndata plan`",
                    c.cell
                );
            }
            out.push((cell, c.quota));
        }
        Ok(out)
    }

    /// Per dimension, how many planned inputs each value gets (the coverage table).
    pub fn value_totals(&self, taxonomy: &Taxonomy) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for dim in &taxonomy.dimensions {
            let m = out.entry(dim.id.clone()).or_default();
            for v in &dim.values {
                m.insert(v.id.clone(), 0);
            }
        }
        for c in &self.cells {
            for part in c.cell.split('|') {
                if let Some((d, v)) = part.split_once('=')
                    && let Some(n) = out.get_mut(d).and_then(|m| m.get_mut(v))
                {
                    *n += c.quota;
                }
            }
        }
        out
    }

    /// The lines `aligndata plan` prints.
    pub fn summary(&self, taxonomy: &Taxonomy) -> Vec<String> {
        let mut lines = vec![format!(
            "plan: {} inputs over {} of {} allowed cells ({}{})",
            self.total,
            self.cells.len(),
            self.grid_cells,
            self.mode,
            if self.sampled {
                ", cells sampled to cover every value"
            } else {
                ""
            }
        )];
        let quotas: Vec<u64> = self.cells.iter().map(|c| c.quota).collect();
        if let (Some(min), Some(max)) = (quotas.iter().min(), quotas.iter().max()) {
            lines.push(format!("  quota per cell: {min}..{max}"));
        }
        for (dim, values) in self.value_totals(taxonomy) {
            let parts: Vec<String> = values.iter().map(|(v, n)| format!("{v} {n}")).collect();
            lines.push(format!("  {dim}: {}", parts.join(", ")));
        }
        if !self.uncovered_values.is_empty() {
            lines.push(format!(
                "  not covered (budget too small or excluded everywhere): {}",
                self.uncovered_values.join(", ")
            ));
        }
        lines
    }
}

/// What feedback says about one cell (from the service's database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellFeedback {
    /// The cell key the service stored.
    pub cell: String,
    /// Turns recorded in it.
    pub turns: u64,
    /// Reward-bearing feedback events that were successes / failures.
    pub successes: u64,
    pub failures: u64,
}

/// How feedback shaped a plan (for the summary).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeedbackPlanReport {
    /// Feedback cells that are allowed cells of the taxonomy.
    pub matched_cells: usize,
    /// Feedback cells that are not (another taxonomy, a labeller that left a dimension out,
    /// `serve` without `--labeller`), with their turns: ignored.
    pub unmatched_cells: Vec<(String, u64)>,
    /// Per planned cell: (key, need, smoothed reward, turns), highest need first, at most 10.
    pub neediest: Vec<(String, f64, f64, u64)>,
}

/// A next-round plan from feedback: more quota where the reward is worst or coverage thinnest.
///
/// For each allowed cell c with `n` recorded turns and `s` / `f` successful / failed
/// reward-bearing feedback events:
///
/// ```text
/// reward(c) = (s + 1) / (s + f + 2)          posterior mean under a Beta(1, 1) prior
/// need(c)   = (1 - reward(c)) + 1 / sqrt(1 + n)
/// quota(c)  ∝ need(c)  (× the cell weight with `proportional`)
/// ```
///
/// The first term sends data where users are least satisfied, the second where the agent has
/// seen least; a cell never seen scores 0.5 + 1 = 1.5, a cell with many turns all thumbs-up
/// close to 0, all thumbs-down close to 1. Quotas are rounded by largest remainder so they sum
/// to `count`; with a budget smaller than the grid the neediest cells get one each.
pub fn build_feedback_plan(
    taxonomy: &Taxonomy,
    config: &PlanConfig,
    feedback: &[CellFeedback],
) -> Result<(Plan, FeedbackPlanReport)> {
    if !config.explicit.is_empty() {
        bail!(
            "explicit cell counts do not combine with a feedback plan\nhint: drop --cell or --from-feedback"
        );
    }
    let cells = enumerable_cells(taxonomy)?;
    let index: HashMap<&Cell, usize> = cells.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let mut seen = vec![(0u64, 0u64, 0u64); cells.len()];
    let mut report = FeedbackPlanReport::default();
    for f in feedback {
        match taxonomy
            .parse_cell_key(&f.cell)
            .and_then(|c| index.get(&c).copied())
        {
            Some(i) => {
                report.matched_cells += 1;
                seen[i].0 += f.turns;
                seen[i].1 += f.successes;
                seen[i].2 += f.failures;
            }
            None => report.unmatched_cells.push((f.cell.clone(), f.turns)),
        }
    }
    let weights: Vec<f64> = cells.iter().map(|c| taxonomy.cell_weight(c)).collect();
    let mut needs = Vec::with_capacity(cells.len());
    let mut rewards = Vec::with_capacity(cells.len());
    for (i, &(n, s, f)) in seen.iter().enumerate() {
        let reward = (s as f64 + 1.0) / ((s + f) as f64 + 2.0);
        let need = (1.0 - reward) + 1.0 / (1.0 + n as f64).sqrt();
        rewards.push(reward);
        needs.push(if config.proportional {
            need * weights[i]
        } else {
            need
        });
    }
    let quotas = largest_remainder(&needs, config.count, config.seed);
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by(|&a, &b| needs[b].total_cmp(&needs[a]).then(a.cmp(&b)));
    report.neediest = order
        .iter()
        .take(10)
        .map(|&i| {
            (
                taxonomy.cell_key(&cells[i]),
                needs[i],
                rewards[i],
                seen[i].0,
            )
        })
        .collect();
    let mut planned = Vec::new();
    let mut covered: Vec<Vec<bool>> = taxonomy
        .dimensions
        .iter()
        .map(|d| vec![false; d.values.len()])
        .collect();
    for (i, cell) in cells.iter().enumerate() {
        if quotas[i] == 0 {
            continue;
        }
        for (d, &v) in cell.0.iter().enumerate() {
            covered[d][v] = true;
        }
        planned.push(PlanCell {
            cell: taxonomy.cell_key(cell),
            quota: quotas[i],
            weight: weights[i],
            explicit: false,
        });
    }
    let mut uncovered_values = Vec::new();
    for (d, dim) in taxonomy.dimensions.iter().enumerate() {
        for (v, value) in dim.values.iter().enumerate() {
            if !covered[d][v] {
                uncovered_values.push(format!("{}={}", dim.id, value.id));
            }
        }
    }
    let plan = Plan {
        taxonomy: taxonomy.name.clone(),
        total: planned.iter().map(|c| c.quota).sum(),
        mode: "feedback".to_string(),
        seed: config.seed,
        grid_cells: cells.len() as u64,
        sampled: (config.count as usize) < cells.len(),
        cells: planned,
        uncovered_values,
    };
    Ok((plan, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxonomy() -> Taxonomy {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/self-doubt/taxonomy.yaml");
        Taxonomy::load(&path).expect("example taxonomy")
    }

    #[test]
    fn quotas_sum_to_count_even_and_proportional() {
        let t = taxonomy();
        for proportional in [false, true] {
            for count in [5u64, 200, 1919, 5000] {
                let plan = build_plan(
                    &t,
                    &PlanConfig {
                        count,
                        proportional,
                        ..Default::default()
                    },
                )
                .expect("plan");
                assert_eq!(
                    plan.total, count,
                    "count {count} proportional {proportional}"
                );
                assert_eq!(plan.cells.iter().map(|c| c.quota).sum::<u64>(), count);
                for c in &plan.cells {
                    let cell = t.parse_cell_key(&c.cell).expect("key");
                    assert!(t.is_allowed(&cell), "excluded cell planned: {}", c.cell);
                }
            }
        }
    }

    #[test]
    fn small_budget_covers_every_value_and_spreads_pairs() {
        let t = taxonomy();
        assert!(t.allowed_cell_count() > 200);
        let plan = build_plan(
            &t,
            &PlanConfig {
                count: 200,
                ..Default::default()
            },
        )
        .expect("plan");
        assert!(plan.sampled);
        assert!(
            plan.uncovered_values.is_empty(),
            "{:?}",
            plan.uncovered_values
        );
        for (dim, values) in plan.value_totals(&t) {
            for (v, n) in values {
                assert!(n > 0, "{dim}={v} not covered");
            }
        }
        // Every theme × situation pair that exclusions allow should appear with 200 inputs.
        let mut pairs = std::collections::HashSet::new();
        for c in &plan.cells {
            let parts: Vec<&str> = c.cell.split('|').collect();
            pairs.insert((parts[0].to_string(), parts[1].to_string()));
        }
        assert!(
            pairs.len() >= 60,
            "only {} theme×situation pairs",
            pairs.len()
        );
        // Budget of the largest dimension's size still covers every value.
        let plan = build_plan(
            &t,
            &PlanConfig {
                count: 10,
                ..Default::default()
            },
        )
        .expect("plan");
        assert!(
            plan.uncovered_values.is_empty(),
            "{:?}",
            plan.uncovered_values
        );
    }

    #[test]
    fn deterministic_and_seeded() {
        let t = taxonomy();
        let a = build_plan(
            &t,
            &PlanConfig {
                count: 50,
                seed: 1,
                ..Default::default()
            },
        )
        .expect("plan");
        let b = build_plan(
            &t,
            &PlanConfig {
                count: 50,
                seed: 1,
                ..Default::default()
            },
        )
        .expect("plan");
        assert_eq!(a, b);
    }

    #[test]
    fn feedback_plan_favours_the_worst_and_the_unseen_cells() {
        let t = taxonomy();
        let cells: Vec<String> = t.allowed_cells().take(3).map(|c| t.cell_key(&c)).collect();
        let fb = vec![
            CellFeedback {
                cell: cells[0].clone(),
                turns: 40,
                successes: 40,
                failures: 0,
            },
            CellFeedback {
                cell: cells[1].clone(),
                turns: 40,
                successes: 0,
                failures: 40,
            },
            CellFeedback {
                cell: "all".into(),
                turns: 5,
                successes: 1,
                failures: 4,
            },
        ];
        let count = t.allowed_cell_count() * 20;
        let (plan, report) = build_feedback_plan(
            &t,
            &PlanConfig {
                count,
                ..Default::default()
            },
            &fb,
        )
        .expect("plan");
        assert_eq!(plan.total, count);
        let quota = |key: &str| {
            plan.cells
                .iter()
                .find(|c| c.cell == key)
                .map_or(0, |c| c.quota)
        };
        let (best, worst, unseen) = (quota(&cells[0]), quota(&cells[1]), quota(&cells[2]));
        assert!(
            worst > best && unseen > worst,
            "best {best}, worst {worst}, unseen {unseen}"
        );
        assert_eq!(report.matched_cells, 2);
        assert_eq!(report.unmatched_cells, vec![("all".to_string(), 5)]);
        // The plan round-trips through the file `generate --plan` reads.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("plan.json");
        plan.save(&path).expect("save");
        assert_eq!(
            Plan::load(&path)
                .expect("load")
                .resolve(&t)
                .expect("resolve")
                .len(),
            plan.cells.len()
        );
    }

    #[test]
    fn explicit_cells_and_errors() {
        let t = taxonomy();
        let key =
            "theme=perfectionism|situation=job-interview|emotion=anxious|risk=none".to_string();
        let plan = build_plan(
            &t,
            &PlanConfig {
                count: 30,
                explicit: vec![(key.clone(), 7)],
                ..Default::default()
            },
        )
        .expect("plan");
        assert_eq!(plan.total, 30);
        assert!(
            plan.cells
                .iter()
                .any(|c| c.cell == key && c.quota == 7 && c.explicit)
        );
        assert!(
            build_plan(
                &t,
                &PlanConfig {
                    count: 3,
                    explicit: vec![(key, 7)],
                    ..Default::default()
                }
            )
            .is_err()
        );
        let excluded =
            "theme=perfectionism|situation=job-interview|emotion=angry|risk=crisis".to_string();
        let err = build_plan(
            &t,
            &PlanConfig {
                count: 30,
                explicit: vec![(excluded, 1)],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("exclusion"), "{err}");
    }
}
