//! Per-cell quotas: a budget shared out by weight, capped by what each cell holds.
//!
//! Water-filling: every open cell gets `remaining × its weight share`; a cell whose share is more
//! than it holds takes all it holds and closes, and what it could not use goes back to the open
//! cells; repeat until no cap binds. The shares are then rounded by largest remainder (ties to
//! the earlier cell), so quotas sum to exactly `min(budget, total available)` and no cell gets
//! more than it holds. Equal weights give the balanced split: the max/min quota ratio among cells
//! that are not short is then at most `(q + 1) / q`.

/// Quotas for cells holding `available` records, with relative `weights` (same length).
/// A weight ≤ 0 (or not finite) gives the cell nothing unless every weight is.
pub fn allocate(available: &[usize], weights: &[f64], budget: usize) -> Vec<usize> {
    let n = available.len();
    let total: usize = available.iter().sum();
    let mut quota = vec![0usize; n];
    if n == 0 || budget == 0 {
        return quota;
    }
    if budget >= total {
        return available.to_vec();
    }
    let mut w: Vec<f64> = weights
        .iter()
        .map(|&x| if x.is_finite() && x > 0.0 { x } else { 0.0 })
        .collect();
    w.resize(n, 0.0);
    if w.iter().all(|&x| x == 0.0) {
        w = vec![1.0; n];
    }
    let mut share = vec![0f64; n];
    let mut open: Vec<usize> = (0..n).filter(|&i| available[i] > 0 && w[i] > 0.0).collect();
    let mut remaining = budget as f64;
    loop {
        let wsum: f64 = open.iter().map(|&i| w[i]).sum();
        if open.is_empty() || wsum <= 0.0 {
            break;
        }
        let capped: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| remaining * w[i] / wsum >= available[i] as f64)
            .collect();
        if capped.is_empty() {
            for &i in &open {
                share[i] = remaining * w[i] / wsum;
            }
            break;
        }
        for &i in &capped {
            share[i] = available[i] as f64;
            remaining -= available[i] as f64;
        }
        open.retain(|i| !capped.contains(i));
    }
    for i in 0..n {
        quota[i] = (share[i].floor() as usize).min(available[i]);
    }
    let target = budget.min(total);
    let mut given: usize = quota.iter().sum();
    if given < target {
        let mut order: Vec<usize> = (0..n).filter(|&i| quota[i] < available[i]).collect();
        order.sort_by(|&a, &b| {
            (share[b] - share[b].floor())
                .total_cmp(&(share[a] - share[a].floor()))
                .then(a.cmp(&b))
        });
        // First by remainder; if rounding still leaves a gap (zero-weight cells), any cell with room.
        let rest: Vec<usize> = (0..n).filter(|&i| quota[i] < available[i]).collect();
        for i in order.into_iter().chain(rest) {
            if given >= target {
                break;
            }
            if quota[i] < available[i] {
                quota[i] += 1;
                given += 1;
            }
        }
        // Still short (only possible with zero weights): fill cell by cell.
        for i in 0..n {
            while given < target && quota[i] < available[i] {
                quota[i] += 1;
                given += 1;
            }
        }
    }
    quota
}
