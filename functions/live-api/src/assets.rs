//! The dashboard's files, compiled in: the page, its script and style, and the chart library
//! (uPlot 1.6.32, MIT, vendored: the page works offline and in the local cloud, no CDN).

use tally_aws::http::Asset;

const PAGE: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("../assets/dashboard.html"),
    cache_control: "no-cache",
};

/// The files under `/dashboard/`, by name. Versioned names may be kept by browsers.
const FILES: &[(&str, Asset)] = &[
    (
        "dashboard.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            bytes: include_bytes!("../assets/dashboard.js"),
            cache_control: "no-cache",
        },
    ),
    (
        "dashboard.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            bytes: include_bytes!("../assets/dashboard.css"),
            cache_control: "no-cache",
        },
    ),
    (
        "uPlot-1.6.32.iife.min.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            bytes: include_bytes!("../assets/vendor/uPlot-1.6.32.iife.min.js"),
            cache_control: "public, max-age=31536000, immutable",
        },
    ),
    (
        "uPlot-1.6.32.min.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            bytes: include_bytes!("../assets/vendor/uPlot-1.6.32.min.css"),
            cache_control: "public, max-age=31536000, immutable",
        },
    ),
];

pub fn page() -> Asset {
    PAGE
}

pub fn file(name: &str) -> Option<Asset> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(n, _)| *n)
}
