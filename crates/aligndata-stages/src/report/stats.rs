//! The figures behind the report, small and dependency-free: distinct-n, mean pairwise cosine,
//! a cross-validated logistic regression with its AUC, and a 2-D PCA by power iteration.
//!
//! Why these: distinct-n and mean pairwise cosine are the usual cheap diversity measures (low
//! distinct-n or high mean cosine = repetitive data). A classifier's AUC at telling synthetic
//! from real on embeddings is a direct realism gap: 0.5 means indistinguishable, 1.0 means
//! trivially separable. PCA (not t-SNE/UMAP) because it is deterministic, linear (distances on
//! the map mean something) and cheap: two power iterations with deflation on at most a few
//! thousand points.

use std::collections::HashSet;

/// Distinct n-grams over all n-grams (words, lowercased) of `texts`; 0 when there are none.
pub fn distinct_n(texts: &[&str], n: usize) -> f64 {
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut total = 0u64;
    for t in texts {
        let words: Vec<String> = t
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase())
            .collect();
        if words.len() < n {
            continue;
        }
        for gram in words.windows(n) {
            total += 1;
            seen.insert(gram.to_vec());
        }
    }
    if total == 0 {
        0.0
    } else {
        seen.len() as f64 / total as f64
    }
}

/// Mean cosine over all pairs of (unit-length) rows; `None` with fewer than two rows.
pub fn mean_pairwise_cosine(rows: &[Vec<f32>]) -> Option<f64> {
    if rows.len() < 2 {
        return None;
    }
    // Sum over pairs = (|Σv|² − Σ|v|²) / 2, linear in the number of rows.
    let dim = rows[0].len();
    let mut sum = vec![0f64; dim];
    let mut self_dots = 0f64;
    for r in rows {
        for (s, x) in sum.iter_mut().zip(r) {
            *s += *x as f64;
        }
        self_dots += r.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>();
    }
    let total: f64 = sum.iter().map(|x| x * x).sum();
    let n = rows.len() as f64;
    Some((total - self_dots) / (n * (n - 1.0)))
}

/// Area under the ROC curve of `scores` for `labels` (true = positive), ties counted half;
/// `None` when one class is missing.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|l| **l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann–Whitney U with average ranks for ties.
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// L2-regularised logistic regression by full-batch gradient descent; returns (weights, bias).
pub fn fit_logistic(x: &[&[f32]], y: &[bool], l2: f64, iterations: usize) -> (Vec<f64>, f64) {
    let dim = x.first().map_or(0, |r| r.len());
    let mut w = vec![0f64; dim];
    let mut b = 0f64;
    let n = x.len().max(1) as f64;
    let lr = 0.5;
    for _ in 0..iterations {
        let mut gw = vec![0f64; dim];
        let mut gb = 0f64;
        for (row, &label) in x.iter().zip(y) {
            let z: f64 = row.iter().zip(&w).map(|(a, b)| *a as f64 * b).sum::<f64>() + b;
            let p = 1.0 / (1.0 + (-z).exp());
            let err = p - if label { 1.0 } else { 0.0 };
            for (g, a) in gw.iter_mut().zip(row.iter()) {
                *g += err * *a as f64;
            }
            gb += err;
        }
        for (wi, g) in w.iter_mut().zip(&gw) {
            *wi -= lr * (g / n + l2 * *wi);
        }
        b -= lr * gb / n;
    }
    (w, b)
}

/// Out-of-fold scores of a logistic regression with `folds`-fold cross-validation (fold = index
/// mod folds; callers shuffle beforehand).
pub fn cross_val_scores(x: &[Vec<f32>], y: &[bool], folds: usize) -> Vec<f64> {
    let folds = folds.max(2);
    let mut scores = vec![0f64; x.len()];
    for f in 0..folds {
        let train: Vec<usize> = (0..x.len()).filter(|i| i % folds != f).collect();
        let xs: Vec<&[f32]> = train.iter().map(|&i| x[i].as_slice()).collect();
        let ys: Vec<bool> = train.iter().map(|&i| y[i]).collect();
        let (w, b) = fit_logistic(&xs, &ys, 1e-3, 300);
        for i in (0..x.len()).filter(|i| i % folds == f) {
            scores[i] = x[i].iter().zip(&w).map(|(a, c)| *a as f64 * c).sum::<f64>() + b;
        }
    }
    scores
}

/// The first two principal components' coordinates of `rows` (centred), by power iteration with
/// deflation; also the share of variance each explains.
pub fn pca_2d(rows: &[Vec<f32>]) -> (Vec<[f64; 2]>, [f64; 2]) {
    let n = rows.len();
    let dim = rows.first().map_or(0, |r| r.len());
    if n == 0 || dim == 0 {
        return (vec![[0.0, 0.0]; n], [0.0, 0.0]);
    }
    let mut mean = vec![0f64; dim];
    for r in rows {
        for (m, x) in mean.iter_mut().zip(r) {
            *m += *x as f64 / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(x, m)| *x as f64 - m).collect())
        .collect();
    let total_var: f64 = centred
        .iter()
        .map(|r| r.iter().map(|x| x * x).sum::<f64>())
        .sum::<f64>();
    let mut components: Vec<Vec<f64>> = Vec::new();
    let mut explained = [0f64; 2];
    for (c, slot) in explained.iter_mut().enumerate() {
        // Deterministic start vector.
        let mut v: Vec<f64> = (0..dim)
            .map(|i| ((i * 7919 + c * 104729) % 1000) as f64 / 1000.0 - 0.5)
            .collect();
        let mut eigen = 0f64;
        for _ in 0..100 {
            // w = Xᵀ X v, with earlier components projected out.
            let mut w = vec![0f64; dim];
            for r in &centred {
                let p: f64 = r.iter().zip(&v).map(|(a, b)| a * b).sum();
                for (wi, a) in w.iter_mut().zip(r) {
                    *wi += p * a;
                }
            }
            for prev in &components {
                let d: f64 = w.iter().zip(prev).map(|(a, b)| a * b).sum();
                for (wi, p) in w.iter_mut().zip(prev) {
                    *wi -= d * p;
                }
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            eigen = norm;
            v = w.into_iter().map(|x| x / norm).collect();
        }
        *slot = if total_var > 0.0 {
            eigen / total_var
        } else {
            0.0
        };
        components.push(v);
    }
    let coords = centred
        .iter()
        .map(|r| {
            let mut out = [0f64; 2];
            for (o, comp) in out.iter_mut().zip(&components) {
                *o = r.iter().zip(comp).map(|(a, b)| a * b).sum();
            }
            out
        })
        .collect();
    (coords, explained)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_inverted_scores() {
        let labels = [false, false, true, true];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &labels), Some(0.5));
        assert_eq!(auc(&[0.5], &[true]), None);
    }

    #[test]
    fn distinct_n_and_cosine() {
        assert_eq!(distinct_n(&["a b a b"], 1), 0.5);
        assert_eq!(distinct_n(&["a b c"], 2), 1.0);
        let rows = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        let m = mean_pairwise_cosine(&rows).unwrap();
        assert!((m - 1.0 / 3.0).abs() < 1e-9, "{m}");
    }

    #[test]
    fn classifier_separates_separable_points_and_pca_finds_the_spread() {
        let x: Vec<Vec<f32>> = (0..60)
            .map(|i| vec![if i % 2 == 0 { 1.0 } else { -1.0 }, (i % 7) as f32 * 0.01])
            .collect();
        let y: Vec<bool> = (0..60).map(|i| i % 2 == 0).collect();
        let s = cross_val_scores(&x, &y, 5);
        assert!(auc(&s, &y).unwrap() > 0.99);
        let (coords, explained) = pca_2d(&x);
        assert!(explained[0] > 0.9, "{explained:?}");
        assert!(coords[0][0].abs() > 0.9);
    }
}
