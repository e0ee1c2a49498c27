//! The local API Gateway applies the template's route throttling, as API Gateway does.

use tally_cloud::cloud::LocalCloud;
use tally_cloud::http::http_get;

use crate::support::cloud_options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_past_its_throttle_is_answered_429_and_other_routes_are_not() {
    let mut opts = cloud_options(&format!("thr{}", std::process::id()));
    opts.params.insert("ApiThrottleRate".into(), "1".into());
    opts.params.insert("ApiThrottleBurst".into(), "3".into());
    let cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut statuses = Vec::new();
    let start = std::time::Instant::now();
    for _ in 0..8 {
        let (status, body) = http_get(&format!("{}/api/v1/rsvp/stats", cloud.api_url))
            .await
            .unwrap();
        if status == 429 {
            assert_eq!(body, r#"{"message":"Too Many Requests"}"#);
        }
        statuses.push(status);
    }
    // The burst, and one more for each second the requests took.
    let most = 3 + start.elapsed().as_secs_f64().ceil() as usize;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (3..=most).contains(&admitted)
            && admitted + statuses.iter().filter(|s| **s == 429).count() == 8,
        "a burst of 3 and 1 a second: {statuses:?}"
    );
    let (status, _) = http_get(&format!("{}/api/v1/events/metrics", cloud.api_url))
        .await
        .unwrap();
    assert_eq!(status, 200, "another route has a bucket of its own");
    cloud.stop().await;
}
