//! The dashboard's files, compiled in: the page, its script and style, and the chart library
//! (uPlot 1.6.32, MIT, vendored: the page works offline and in the local cloud, no CDN).

use tally_aws::http::Asset;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A file of ours: revalidated on every load, so a deploy shows at once.
const fn ours(content_type: &'static str, bytes: &'static [u8]) -> Asset {
    Asset {
        content_type,
        bytes,
        cache_control: "no-cache",
    }
}

/// A vendored file: its name carries its version, so browsers may keep it for good.
const fn vendored(content_type: &'static str, bytes: &'static [u8]) -> Asset {
    Asset {
        content_type,
        bytes,
        cache_control: "public, max-age=31536000, immutable",
    }
}

const PAGE: Asset = ours(
    "text/html; charset=utf-8",
    include_bytes!("../assets/dashboard.html"),
);

/// The files under `/dashboard/`, by name.
const FILES: &[(&str, Asset)] = &[
    (
        "dashboard.js",
        ours(JS, include_bytes!("../assets/dashboard.js")),
    ),
    (
        "dashboard.css",
        ours(CSS, include_bytes!("../assets/dashboard.css")),
    ),
    (
        "uPlot-1.6.32.iife.min.js",
        vendored(
            JS,
            include_bytes!("../assets/vendor/uPlot-1.6.32.iife.min.js"),
        ),
    ),
    (
        "uPlot-1.6.32.min.css",
        vendored(CSS, include_bytes!("../assets/vendor/uPlot-1.6.32.min.css")),
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
