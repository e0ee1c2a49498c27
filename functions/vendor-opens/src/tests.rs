use chrono::{TimeZone, Utc};
use tally_engine::testing::MemoryObjects;
use tally_lake::rows::{write_parquet, Value};

use super::*;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
}

/// A row of `table` with `values` by column name, the rest null.
fn row(table: &Table, values: &[(&str, Value)]) -> Row {
    let mut r = vec![Value::Null; table.columns.len()];
    for (name, v) in values {
        r[table.column(name).unwrap()] = v.clone();
    }
    r
}

fn put(lake: &MemoryObjects, table: &Table, file: &str, rows: &[Row]) {
    lake.insert(
        &format!("{}{file}", table.prefix()),
        write_parquet(table, rows).unwrap(),
    );
}

fn open(event: &str, flyer: i64, when: DateTime<Utc>) -> Row {
    let t = opens_table();
    row(
        t,
        &[
            ("event_id", Value::str(event)),
            ("app_id", Value::str("shop")),
            ("flyer_id", Value::BigInt(flyer)),
            ("client_time", Value::Timestamp(when)),
            ("server_time", Value::Timestamp(when)),
        ],
    )
}

fn opens_table() -> &'static Table {
    event_tables()
        .iter()
        .find(|t| t.info.name == "flyer_open")
        .unwrap()
        .table
}

#[tokio::test]
async fn each_open_counts_for_the_vendor_of_its_flyer_when_it_was_opened() {
    let lake = MemoryObjects::default();
    let vendor = |id, name: &str, from| {
        row(
            &DIM_VENDOR,
            &[
                ("vendor_id", Value::BigInt(id)),
                ("name", Value::str(name)),
                ("row_valid_from", Value::Timestamp(from)),
            ],
        )
    };
    // Vendor 1 renamed at noon today.
    put(
        &lake,
        &DIM_VENDOR,
        "a.parquet",
        &[
            vendor(1, "Acme", at(1, 0)),
            vendor(2, "Beta", at(1, 0)),
            vendor(1, "Acme Co", at(3, 12)),
        ],
    );
    let flyer = |id, vendor, from| {
        row(
            &DIM_FLYER,
            &[
                ("flyer_id", Value::BigInt(id)),
                ("vendor_id", Value::BigInt(vendor)),
                ("row_valid_from", Value::Timestamp(from)),
            ],
        )
    };
    // Flyer 11 moved from vendor 1 to vendor 2 at ten today.
    put(
        &lake,
        &DIM_FLYER,
        "a.parquet",
        &[
            flyer(10, 1, at(1, 0)),
            flyer(11, 1, at(1, 0)),
            flyer(11, 2, at(3, 10)),
        ],
    );
    let t = opens_table();
    put(
        &lake,
        t,
        "dt=2026-12-03/a.parquet",
        &[
            open("e1", 10, at(3, 9)),
            open("e2", 10, at(3, 13)),
            open("e3", 11, at(3, 9)),
            open("e4", 11, at(3, 11)),
            open("e5", 99, at(3, 10)),
        ],
    );
    // The same open delivered twice, in another file: once.
    put(
        &lake,
        t,
        "dt=2026-12-03/b.parquet",
        &[open("e1", 10, at(3, 9))],
    );
    // Yesterday's: not today's.
    put(
        &lake,
        t,
        "dt=2026-12-02/a.parquet",
        &[open("e0", 10, at(2, 9))],
    );

    let now = at(3, 18);
    let answer = VendorOpensStep { store: lake }
        .run(now.date_naive(), now)
        .await
        .unwrap();
    assert_eq!(
        answer,
        VendorOpens {
            day: now.date_naive(),
            opens: 5,
            vendors: vec![
                Vendor {
                    vendor_id: 1,
                    name: Some("Acme Co".into()),
                    opens: 3,
                    flyers: 2
                },
                Vendor {
                    vendor_id: 2,
                    name: Some("Beta".into()),
                    opens: 1,
                    flyers: 1
                },
            ],
            other_vendors: 0,
            unknown: 1,
            at: now,
        }
    );
}

#[test]
fn vendors_after_the_top_are_summed() {
    let flyers = Versions(
        (0..15)
            .map(|v| (v, vec![(at(1, 0), None, Some(v))]))
            .collect(),
    );
    let vendors = Versions(
        (0..15)
            .map(|v| (v, vec![(at(1, 0), None, Some(format!("v{v}")))]))
            .collect(),
    );
    // Vendor v has v + 1 opens.
    let opens: Vec<(i64, DateTime<Utc>)> = (0..15)
        .flat_map(|v| std::iter::repeat_n((v, at(3, 9)), v as usize + 1))
        .collect();
    let answer = count(at(3, 0).date_naive(), &opens, &flyers, &vendors, at(3, 18));
    assert_eq!(answer.vendors.len(), TOP);
    assert_eq!(answer.vendors[0].vendor_id, 14);
    assert_eq!(answer.other_vendors, (1..=5).sum::<u64>());
    assert_eq!(
        answer.vendors.iter().map(|v| v.opens).sum::<u64>() + answer.other_vendors,
        answer.opens
    );
}
