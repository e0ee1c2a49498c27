//! `/collect` from web pages in Chromium, as a shop's site posts its events with `fetch`: a page
//! of an origin its app allows is counted; a page of an origin the stack's API does not let
//! through is blocked by the browser itself (the preflight gets no CORS headers); a page of an
//! origin the API lets through but that is not the app's gets a readable 403. Only the first
//! event is counted.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tally_cloud::http::http_get;

use crate::support::{chromium_dom, shared_cloud, tally, wait_for};

/// The page: posts one `app_open` to `api`'s `/collect` with `key`, then shows what came back
/// (`200 {...}`, `403 {...}`) or that the browser blocked it (`blocked TypeError`).
const PAGE: &str = r#"<!doctype html>
<html><body><pre id="result">pending</pre>
<script>
const q = new URLSearchParams(location.search);
const events = [{event_id: q.get("id"), event_type: "app_open", client_time: Date.now(),
                 device: {id: "d-web-" + q.get("id"), platform: "web"}}];
fetch(q.get("api") + "/collect", {
  method: "POST",
  headers: {"content-type": "application/json", "x-api-key": q.get("key")},
  body: JSON.stringify(events),
})
  .then(r => r.text().then(t => { document.getElementById("result").textContent = r.status + " " + t; }))
  .catch(e => { document.getElementById("result").textContent = "blocked " + e.name; });
</script></body></html>"#;

/// Serves [`PAGE`] to every request on `listener`, until the test ends.
fn serve_pages(listener: std::net::TcpListener) {
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    PAGE.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(PAGE.as_bytes()).await;
            });
        }
    });
}

/// What the page at `origin` showed after posting `id` with `key`.
async fn post_from(origin: &str, api: &str, key: &str, id: &str) -> String {
    let url = format!("{origin}/post.html?api={api}&key={key}&id={id}");
    let dom = tokio::task::spawn_blocking(move || chromium_dom(&url))
        .await
        .unwrap();
    let start = dom.find("<pre id=\"result\">").expect("the page rendered") + 17;
    let end = dom[start..].find("</pre>").unwrap() + start;
    dom[start..end].replace("&quot;", "\"")
}

/// Registers an app with `tally apps add` and these origins; its (app_id, key).
fn register(edge_url: &str, name: &str, origins: &[&str]) -> (String, String) {
    let mut args = vec!["apps", "add", name];
    for o in origins {
        args.extend(["--origin", o]);
    }
    let out = tally(&args, edge_url);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let app_id = stderr
        .split_whitespace()
        .nth(2)
        .expect("registered app <id>")
        .to_string();
    (app_id, key)
}

/// Events the live metrics counted for `app_id` in the last hour.
async fn counted(api: &str, app_id: &str) -> u64 {
    let url = format!("{api}/api/v1/events/metrics?minutes=60&app_id={app_id}");
    let (status, body) = http_get(&url).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["events"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_the_apps_origins_post_events_and_others_are_refused() {
    let cloud = shared_cloud();
    let allowed = cloud.web_origin.clone();
    serve_pages(
        cloud
            .web_pages
            .lock()
            .unwrap()
            .take()
            .expect("one browser test"),
    );
    // A page of an origin the stack's API does not let through.
    let elsewhere = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
    let stranger = format!("http://{}", elsewhere.local_addr().unwrap());
    serve_pages(elsewhere);

    // An app's origin must be one the API lets through, or the CLI says which parameter to set.
    let refused = tally(
        &["apps", "add", "Nowhere", "--origin", &stranger],
        &cloud.edge_url,
    );
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("CollectAllowedOrigins"), "{why}");
    let (shop, shop_key) = register(&cloud.edge_url, "Web shop", &[&allowed]);
    let (server, server_key) = register(&cloud.edge_url, "Server only", &[]);
    let api = &cloud.api_url;

    let ok = post_from(&allowed, api, &shop_key, "web-1").await;
    assert!(
        ok.starts_with("200 ") && ok.contains("\"accepted\":1"),
        "{ok}"
    );
    let blocked = post_from(&stranger, api, &shop_key, "web-2").await;
    assert_eq!(
        blocked, "blocked TypeError",
        "the browser refuses: no CORS header"
    );
    let not_its_own = post_from(&allowed, api, &server_key, "web-3").await;
    assert!(
        not_its_own.starts_with("403 ")
            && not_its_own.contains("may not post events of app Server only"),
        "{not_its_own}"
    );

    wait_for(
        "the page's event counted",
        Duration::from_secs(60),
        || async { (counted(api, &shop).await == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        counted(api, &server).await,
        0,
        "nothing of the refused pages"
    );
}
