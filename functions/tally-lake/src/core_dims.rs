//! Seed 002's dimensions from the core application's database (vendors, flyers, users): type-2,
//! one row per version of an entity, `row_valid_from` the source row's `updated_at`. A new
//! version is a new row; `row_valid_to` and `is_current` are made on read from the next version
//! (`Keep::Versions`), so no extraction rewrites what an earlier one wrote.

use crate::columns;
use crate::table::{Keep, Layout, Table};

const VERSIONS: Keep = Keep::Versions {
    from: "row_valid_from",
    to: "row_valid_to",
    current: "is_current",
};

pub const DIM_VENDOR: Table = Table {
    name: "dim_vendor",
    description: "Every version of each vendor of the core database (type 2): row_valid_to is when the next version began, null while current.",
    columns: columns!(vendor_id bigint, name string, category string, row_valid_from timestamp,
        row_valid_to timestamp, is_current boolean),
    layout: Layout::Unique {
        id: &["vendor_id"],
        keep: VERSIONS,
    },
};

pub const DIM_FLYER: Table = Table {
    name: "dim_flyer",
    description: "Every version of each flyer of the core database (type 2), with its vendor and the days it is valid.",
    columns: columns!(flyer_id bigint, vendor_id bigint, title string, valid_from timestamp,
        valid_to timestamp, row_valid_from timestamp, row_valid_to timestamp, is_current boolean),
    layout: Layout::Unique {
        id: &["flyer_id"],
        keep: VERSIONS,
    },
};

pub const DIM_USER: Table = Table {
    name: "dim_user",
    description:
        "Every version of each user of the core database (type 2): country and signup time.",
    columns: columns!(user_id string, country string, signup_at timestamp,
        row_valid_from timestamp, row_valid_to timestamp, is_current boolean),
    layout: Layout::Unique {
        id: &["user_id"],
        keep: VERSIONS,
    },
};

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::rows::Value;
    use crate::unique::deduplicate;

    #[test]
    fn versions_close_at_the_next_one_and_a_version_seen_twice_is_one() {
        let at = |h| Value::Timestamp(Utc.with_ymd_and_hms(2026, 11, 1, h, 0, 0).unwrap());
        let vendor = |name: &str, h| {
            vec![
                Value::BigInt(7),
                Value::str(name),
                Value::str("grocery"),
                at(h),
                Value::Null,
                Value::Null,
            ]
        };
        let rows = vec![
            vendor("Renamed", 12),
            vendor("First", 9),
            vendor("Renamed", 12),
        ];
        let kept = deduplicate(&DIM_VENDOR, rows).unwrap();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(
            (&kept[0][1], &kept[0][4], &kept[0][5]),
            (&Value::str("First"), &at(12), &Value::Bool(false))
        );
        assert_eq!(
            (&kept[1][1], &kept[1][4], &kept[1][5]),
            (&Value::str("Renamed"), &Value::Null, &Value::Bool(true))
        );
        let sql = DIM_VENDOR.view_sql().unwrap();
        assert!(
            sql.contains(r#"lead("row_valid_from") OVER (PARTITION BY "vendor_id" ORDER BY "row_valid_from") AS "row_valid_to""#),
            "{sql}"
        );
    }
}
