//! A random forest: many CART trees (smartcore's), each fitted to a bootstrap sample of the rows
//! and a random subset of the columns, answering by majority vote. smartcore has a forest of its
//! own, but it keeps its trees to itself, and the model must say how sure it is (the share of
//! votes) and which features matter (the trees' impurity decrease), so the bagging is here: a
//! few lines over the crate's trees.

use std::collections::BTreeMap;

use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters,
};
use tally_engine::sampling::SeededRng;

type Tree = DecisionTreeClassifier<f64, i32, DenseMatrix<f64>, Vec<i32>>;

/// How the forest grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForestParams {
    pub trees: usize,
    /// Columns each tree sees: the square root of the columns when `None` (the usual choice for
    /// classification).
    pub columns_per_tree: Option<usize>,
    pub max_depth: Option<u16>,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 100,
            columns_per_tree: None,
            max_depth: None,
            seed: 2026,
        }
    }
}

pub struct Forest {
    /// Each tree with the columns it was fitted on.
    trees: Vec<(Vec<usize>, Tree)>,
    columns: usize,
}

fn matrix(rows: &[&[f64]], columns: &[usize]) -> Result<DenseMatrix<f64>, String> {
    let values: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| columns.iter().map(|&c| r[c]).collect())
        .collect();
    DenseMatrix::from_2d_vec(&values).map_err(|e| e.to_string())
}

impl Forest {
    /// Fits the forest to `rows` (one per sample, every row as long) and their `labels`.
    pub fn fit(rows: &[Vec<f64>], labels: &[i32], params: ForestParams) -> Result<Self, String> {
        let columns = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || columns == 0 || rows.len() != labels.len() {
            return Err(format!(
                "cannot fit {} rows of {columns} columns to {} labels",
                rows.len(),
                labels.len()
            ));
        }
        let per_tree = params
            .columns_per_tree
            .unwrap_or_else(|| (columns as f64).sqrt().ceil() as usize)
            .clamp(1, columns);
        let mut rng = SeededRng::new(params.seed);
        let mut trees = Vec::with_capacity(params.trees);
        for t in 0..params.trees {
            let sample: Vec<usize> = (0..rows.len())
                .map(|_| rng.below(rows.len() as u64) as usize)
                .collect();
            // A partial Fisher-Yates shuffle picks the tree's columns.
            let mut all: Vec<usize> = (0..columns).collect();
            for i in 0..per_tree {
                let j = i + rng.below((columns - i) as u64) as usize;
                all.swap(i, j);
            }
            let mut picked = all[..per_tree].to_vec();
            picked.sort_unstable();
            let sample_rows: Vec<&[f64]> = sample.iter().map(|&i| rows[i].as_slice()).collect();
            let x = matrix(&sample_rows, &picked)?;
            let y: Vec<i32> = sample.iter().map(|&i| labels[i]).collect();
            let tree_params = DecisionTreeClassifierParameters {
                max_depth: params.max_depth,
                seed: Some(params.seed.wrapping_add(t as u64)),
                ..Default::default()
            };
            let tree = Tree::fit(&x, &y, tree_params).map_err(|e| e.to_string())?;
            trees.push((picked, tree));
        }
        Ok(Forest { trees, columns })
    }

    /// Each row's label by majority vote (ties to the smallest label), with the share of the
    /// trees that voted for it.
    pub fn predict(&self, rows: &[Vec<f64>]) -> Result<Vec<(i32, f64)>, String> {
        let mut votes: Vec<BTreeMap<i32, usize>> = vec![BTreeMap::new(); rows.len()];
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let all_rows: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        for (columns, tree) in &self.trees {
            let x = matrix(&all_rows, columns)?;
            for (i, label) in tree
                .predict(&x)
                .map_err(|e| e.to_string())?
                .into_iter()
                .enumerate()
            {
                *votes[i].entry(label).or_default() += 1;
            }
        }
        Ok(votes
            .into_iter()
            .map(|v| {
                let (label, n) = v.into_iter().fold(
                    (0, 0),
                    |best, (l, n)| if n > best.1 { (l, n) } else { best },
                );
                (label, n as f64 / self.trees.len() as f64)
            })
            .collect())
    }

    /// How much each column decreased the trees' impurity, averaged over the trees, summing to 1.
    pub fn importances(&self) -> Vec<f64> {
        let mut total = vec![0.0; self.columns];
        for (columns, tree) in &self.trees {
            let of_tree = tree.compute_feature_importances(false);
            for (k, &c) in columns.iter().enumerate() {
                let v = of_tree.get(k).copied().unwrap_or(0.0);
                if v.is_finite() {
                    total[c] += v;
                }
            }
        }
        let sum: f64 = total.iter().sum();
        if sum > 0.0 {
            total.iter_mut().for_each(|v| *v /= sum);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two informative columns (the label is which of them is set) among eight of noise.
    fn data(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<i32>) {
        let mut rng = SeededRng::new(seed);
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let label = rng.below(2) as i32;
            let mut row: Vec<f64> = (0..10).map(|_| rng.below(2) as f64).collect();
            row[3] = if label == 1 { 1.0 } else { 0.0 };
            row[7] = if label == 0 { 1.0 } else { 0.0 };
            rows.push(row);
            labels.push(label);
        }
        (rows, labels)
    }

    #[test]
    fn learns_what_the_labels_depend_on_and_says_so() {
        let (rows, labels) = data(200, 1);
        let forest = Forest::fit(&rows, &labels, ForestParams::default()).unwrap();
        let (test, truth) = data(100, 2);
        let predicted = forest.predict(&test).unwrap();
        let right = predicted
            .iter()
            .zip(&truth)
            .filter(|((p, _), t)| p == *t)
            .count();
        assert_eq!(right, 100, "the informative columns decide");
        assert!(predicted.iter().all(|(_, p)| *p > 0.5 && *p <= 1.0));
        let imp = forest.importances();
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let top: f64 = imp[3] + imp[7];
        assert!(top > 0.8, "the two columns that matter: {imp:?}");
        // The same seed, the same forest.
        let again = Forest::fit(&rows, &labels, ForestParams::default()).unwrap();
        assert_eq!(again.predict(&test).unwrap(), predicted);
    }

    #[test]
    fn refuses_what_it_cannot_fit() {
        assert!(Forest::fit(&[], &[], ForestParams::default()).is_err());
        assert!(Forest::fit(&[vec![1.0]], &[1, 2], ForestParams::default()).is_err());
    }
}
