//! Groups clustered by their topics (the seed's "hierarchical clustering using urlkeys"): the
//! Jaccard distance of two groups' topic sets, average-linkage hierarchical clustering (kodama,
//! the fastcluster algorithms), the dendrogram cut into `k` clusters.

use std::collections::{BTreeMap, BTreeSet};

/// 1 - |a ∩ b| / |a ∪ b|; two groups without topics are alike.
pub fn jaccard_distance(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    1.0 - a.intersection(b).count() as f64 / union as f64
}

/// Each group's cluster, `0..k` (fewer when there are fewer groups), numbered by size, largest
/// first (ties by smallest group id), so the numbers mean the same on every run.
pub fn cluster(groups: &BTreeMap<i64, BTreeSet<String>>, k: usize) -> BTreeMap<i64, i32> {
    let ids: Vec<i64> = groups.keys().copied().collect();
    let sets: Vec<&BTreeSet<String>> = groups.values().collect();
    let n = ids.len();
    if n == 0 {
        return BTreeMap::new();
    }
    let mut condensed = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            condensed.push(jaccard_distance(sets[i], sets[j]));
        }
    }
    let dendrogram = kodama::linkage(&mut condensed, n, kodama::Method::Average);
    // Step s merges two clusters into cluster n + s: the first n - k steps leave k clusters.
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let k = k.clamp(1, n);
    for (s, step) in dendrogram.steps().iter().take(n - k).enumerate() {
        let merged = n + s;
        let (a, b) = (
            root(&mut parent, step.cluster1),
            root(&mut parent, step.cluster2),
        );
        parent[a] = merged;
        parent[b] = merged;
    }
    let mut members: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        members.entry(root(&mut parent, i)).or_default().push(*id);
    }
    let mut clusters: Vec<Vec<i64>> = members.into_values().collect();
    clusters.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    clusters
        .iter()
        .enumerate()
        .flat_map(|(c, ids)| ids.iter().map(move |id| (*id, c as i32)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(sets: &[(i64, &[&str])]) -> BTreeMap<i64, BTreeSet<String>> {
        sets.iter()
            .map(|(id, t)| (*id, t.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn jaccard_distance_of_topic_sets() {
        let g = groups(&[(1, &["a", "b"]), (2, &["b", "c"]), (3, &[]), (4, &[])]);
        assert!((jaccard_distance(&g[&1], &g[&2]) - (1.0 - 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(jaccard_distance(&g[&1], &g[&1]), 0.0);
        assert_eq!(jaccard_distance(&g[&1], &g[&3]), 1.0);
        assert_eq!(jaccard_distance(&g[&3], &g[&4]), 0.0);
    }

    #[test]
    fn groups_with_shared_topics_cluster_together_whatever_k() {
        let g = groups(&[
            (10, &["rust", "wasm", "systems"]),
            (11, &["rust", "systems"]),
            (12, &["rust", "wasm"]),
            (20, &["hiking", "outdoors"]),
            (21, &["hiking", "outdoors", "camping"]),
            (30, &["jazz"]),
        ]);
        let three = cluster(&g, 3);
        assert_eq!(
            three.into_iter().collect::<Vec<_>>(),
            [(10, 0), (11, 0), (12, 0), (20, 1), (21, 1), (30, 2)]
        );
        let one = cluster(&g, 1);
        assert!(one.values().all(|c| *c == 0));
        let many = cluster(&g, 100);
        assert_eq!(
            many.values().collect::<BTreeSet<_>>().len(),
            6,
            "one per group at most"
        );
        assert!(cluster(&BTreeMap::new(), 3).is_empty());
    }
}
