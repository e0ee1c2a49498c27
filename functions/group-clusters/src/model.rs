//! The seed's "regression with ensemble method to predict cluster label": a random forest learns
//! a group's cluster from its features on four fifths of the groups and is judged on the rest,
//! against always answering the training groups' commonest cluster.

use std::collections::BTreeMap;

use serde::Serialize;
use tally_engine::sampling::SeededRng;

use crate::features::{FeatureSpace, Group};
use crate::forest::{Forest, ForestParams};

/// The model's name in `cluster_model_eval`.
pub const MODEL: &str = "random_forest";

/// One group in five is held out, chosen by a hash of its id: the same groups on every run, so
/// that accuracies of two runs compare.
pub fn is_held_out(group_id: i64) -> bool {
    SeededRng::new(group_id as u64).next_u64().is_multiple_of(5)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub group_id: i64,
    pub cluster: i32,
    pub predicted: i32,
    pub probability: f64,
    /// `train` or `test`.
    pub split: &'static str,
}

/// A feature, or a kind of them, and the share of the forest's impurity decrease it earned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Importance {
    pub feature: String,
    pub importance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub model: &'static str,
    /// On the held-out groups.
    pub accuracy: f64,
    /// Always answering the commonest cluster of the training groups, on the held-out groups.
    pub baseline_accuracy: f64,
    pub n_train: usize,
    pub n_test: usize,
    /// By kind (topics, city, country, size, activity), largest first.
    pub importance_by_kind: Vec<Importance>,
    /// The single features that mattered most.
    pub top_features: Vec<Importance>,
    #[serde(skip)]
    pub predictions: Vec<Prediction>,
}

/// Trains on the groups not held out and evaluates on the others; `None` when either side is
/// empty (too few groups to say anything).
pub fn train_and_evaluate(
    groups: &BTreeMap<i64, Group>, clusters: &BTreeMap<i64, i32>, params: ForestParams,
) -> Result<Option<Evaluation>, String> {
    let labelled: Vec<(&Group, i32)> = groups
        .values()
        .filter_map(|g| clusters.get(&g.id).map(|c| (g, *c)))
        .collect();
    let (test, train): (Vec<_>, Vec<_>) =
        labelled.into_iter().partition(|(g, _)| is_held_out(g.id));
    if train.is_empty() || test.is_empty() {
        return Ok(None);
    }
    let training: Vec<&Group> = train.iter().map(|(g, _)| *g).collect();
    let space = FeatureSpace::of(&training);
    let rows = |side: &[(&Group, i32)]| -> Vec<Vec<f64>> {
        side.iter().map(|(g, _)| space.row(g)).collect()
    };
    let labels = |side: &[(&Group, i32)]| -> Vec<i32> { side.iter().map(|(_, c)| *c).collect() };
    let forest = Forest::fit(&rows(&train), &labels(&train), params)?;

    let mut per_cluster: BTreeMap<i32, usize> = BTreeMap::new();
    for c in labels(&train) {
        *per_cluster.entry(c).or_default() += 1;
    }
    let majority = per_cluster
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, _)| *c)
        .expect("training groups");

    let mut predictions = Vec::with_capacity(train.len() + test.len());
    for (side, split) in [(&train, "train"), (&test, "test")] {
        for ((g, cluster), (predicted, probability)) in
            side.iter().zip(forest.predict(&rows(side))?)
        {
            predictions.push(Prediction {
                group_id: g.id,
                cluster: *cluster,
                predicted,
                probability,
                split,
            });
        }
    }
    let held_out: Vec<&Prediction> = predictions.iter().filter(|p| p.split == "test").collect();
    let share = |hit: &dyn Fn(&Prediction) -> bool| {
        held_out.iter().filter(|p| hit(p)).count() as f64 / held_out.len() as f64
    };

    let importances = forest.importances();
    let mut by_kind: BTreeMap<&str, f64> = BTreeMap::new();
    let mut single: Vec<Importance> = Vec::new();
    for (feature, importance) in space.features.iter().zip(importances) {
        *by_kind.entry(feature.kind()).or_default() += importance;
        single.push(Importance {
            feature: feature.to_string(),
            importance,
        });
    }
    let largest_first = |v: &mut Vec<Importance>| {
        v.sort_by(|a, b| {
            b.importance
                .total_cmp(&a.importance)
                .then(a.feature.cmp(&b.feature))
        })
    };
    let mut importance_by_kind: Vec<Importance> = by_kind
        .into_iter()
        .map(|(k, importance)| Importance {
            feature: k.to_string(),
            importance,
        })
        .collect();
    largest_first(&mut importance_by_kind);
    largest_first(&mut single);
    single.truncate(5);
    Ok(Some(Evaluation {
        model: MODEL,
        accuracy: share(&|p| p.predicted == p.cluster),
        baseline_accuracy: share(&|p| p.cluster == majority),
        n_train: train.len(),
        n_test: test.len(),
        importance_by_kind,
        top_features: single,
        predictions,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::clustering::cluster;

    /// Groups of three interests, each with topics of its own and a few shared by all, in cities
    /// that say nothing of the interest: their clusters are learnable from the topics alone.
    pub fn learnable_groups(n: i64) -> BTreeMap<i64, Group> {
        let interests = [
            ["rust", "wasm", "systems", "compilers"],
            ["hiking", "camping", "outdoors", "climbing"],
            ["jazz", "blues", "guitar", "vinyl"],
        ];
        let shared = ["networking", "beer", "newcomers"];
        let mut rng = SeededRng::new(7);
        (1..=n)
            .map(|id| {
                let interest = &interests[(id % 3) as usize];
                let mut topics: BTreeSet<String> = BTreeSet::new();
                while topics.len() < 2 {
                    topics.insert(interest[rng.below(4) as usize].to_string());
                }
                if rng.below(2) == 0 {
                    topics.insert(shared[rng.below(3) as usize].to_string());
                }
                let group = Group {
                    id,
                    topics,
                    city: Some(["austin", "boston", "chicago"][rng.below(3) as usize].into()),
                    country: Some("us".into()),
                    members: 5 + rng.below(50),
                    rsvps: 10 + rng.below(200),
                    events: 1 + rng.below(10),
                };
                (id, group)
            })
            .collect()
    }

    #[test]
    fn beats_the_majority_on_groups_whose_clusters_their_features_tell() {
        let groups = learnable_groups(300);
        let topics = groups
            .iter()
            .map(|(id, g)| (*id, g.topics.clone()))
            .collect();
        let clusters = cluster(&topics, 3);
        let eval = train_and_evaluate(&groups, &clusters, ForestParams::default())
            .unwrap()
            .unwrap();
        assert_eq!(eval.n_train + eval.n_test, 300);
        assert!(eval.n_test > 30 && eval.n_train > 200, "{eval:?}");
        assert!(
            eval.accuracy > eval.baseline_accuracy + 0.3 && eval.accuracy > 0.9,
            "accuracy {} against the baseline's {}",
            eval.accuracy,
            eval.baseline_accuracy
        );
        assert_eq!(eval.importance_by_kind[0].feature, "topics", "{eval:?}");
        // The accuracy is what the held-out predictions say.
        let test: Vec<_> = eval
            .predictions
            .iter()
            .filter(|p| p.split == "test")
            .collect();
        let right = test.iter().filter(|p| p.predicted == p.cluster).count();
        assert_eq!(eval.accuracy, right as f64 / test.len() as f64);
        assert!(test.iter().all(|p| is_held_out(p.group_id)));
    }

    #[test]
    fn too_few_groups_give_no_model() {
        let groups = learnable_groups(1);
        let clusters = BTreeMap::from([(1, 0)]);
        assert_eq!(
            train_and_evaluate(&groups, &clusters, ForestParams::default()).unwrap(),
            None
        );
    }
}
