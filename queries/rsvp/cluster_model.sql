-- How well the ensemble model (tally clusters) predicts the clusters of groups it never saw,
-- against always answering the training groups' commonest cluster, and how sure it was.
SELECT e.model,
       round(e.accuracy, 3) AS accuracy,
       round(e.baseline_accuracy, 3) AS baseline_accuracy,
       e.n_train,
       e.n_test,
       round(avg(p.probability), 3) AS mean_vote_share_held_out,
       e.trained_at
FROM cluster_model_eval e
CROSS JOIN group_cluster_predictions p
WHERE p.split = 'test'
GROUP BY e.model, e.accuracy, e.baseline_accuracy, e.n_train, e.n_test, e.trained_at
