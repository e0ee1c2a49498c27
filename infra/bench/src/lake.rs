//! Figures of the lake: how fast the lake writer converts archived objects on this machine, how
//! large the Parquet is against the GZIP JSON it came from, and how long from a PutRecords
//! acknowledgement until `tally sql` answers with the record.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;
use tally_lake::LakeWriter;

use super::objects::FolderObjects;
use super::pipeline::Percentiles;
use super::workload::{today, visits, Skew};
use tally_cloud::cloud::LocalCloud;
use tally_cloud::kinesis::put_all;
use tally_control::athena::{copy_lake, query_lake};

#[derive(Debug, Clone, Serialize)]
pub struct LakeFigures {
    /// Visits in the archived objects converted.
    pub records: usize,
    pub objects: usize,
    pub seconds: f64,
    pub records_per_s: f64,
    /// Of the archived objects as stored (GZIP).
    pub gzip_mb_per_s: f64,
    /// Of the records themselves (JSON lines, uncompressed).
    pub json_mb_per_s: f64,
    pub gzip_bytes: usize,
    pub parquet_bytes: usize,
    /// Parquet bytes per GZIP byte of the same records.
    pub parquet_to_gzip: f64,
    /// Rows written per table.
    pub rows: std::collections::BTreeMap<String, usize>,
    /// From a visit's PutRecords acknowledgement to `tally sql` answering with it.
    pub put_to_sql: Option<Percentiles>,
}

fn gzip(lines: &[String]) -> Result<(Vec<u8>, usize)> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut raw = 0;
    for l in lines {
        enc.write_all(l.as_bytes())?;
        enc.write_all(b"\n")?;
        raw += l.len() + 1;
    }
    Ok((enc.finish()?, raw))
}

/// The conversion alone, in memory (no S3 round trips): `objects` archived objects of
/// `per_object` skewed visits each, as Firehose would deliver them.
pub async fn conversion(objects: usize, per_object: usize) -> Result<LakeFigures> {
    let batches = (0..objects)
        .map(|i| {
            visits(
                &format!("L{i}x"),
                per_object,
                Skew::Zipf,
                300 + i as u64,
                today(),
                1667.0,
            )
            .into_iter()
            .map(|e| e.data)
            .collect()
        })
        .collect();
    convert_lines("visits", batches).await
}

/// Each batch of lines archived as one object of `stream` (GZIP, as Firehose delivers), then all
/// of them converted at once, in a folder (under the temporary folder).
pub async fn convert_lines(stream: &str, batches: Vec<Vec<String>>) -> Result<LakeFigures> {
    let store = FolderObjects::new(&std::env::temp_dir().join("tally-bench-lake").join(stream))?;
    let mut keys = Vec::new();
    let (mut gzip_bytes, mut json_bytes, mut records) = (0, 0, 0);
    for (i, lines) in batches.iter().enumerate() {
        let (gz, raw) = gzip(lines)?;
        gzip_bytes += gz.len();
        json_bytes += raw;
        records += lines.len();
        let key = format!(
            "raw/{stream}/dt=2026-11-22/bench-1-2026-11-22-10-{:02}-{:02}-90e1035e-397c-4140-b289-c6a9d2136883.gz",
            i / 60 % 60,
            i % 60
        );
        store.insert(&key, &gz)?;
        keys.push(key);
    }
    let writer = LakeWriter { store: &store };
    let began = Instant::now();
    let report = writer.convert(&keys).await;
    let seconds = began.elapsed().as_secs_f64();
    if !report.failed.is_empty() {
        bail!("the conversion failed: {:?}", report.failed);
    }
    // Merged tables' files are only known once written: their bytes are what the store holds.
    let parquet_bytes = store
        .keys()
        .iter()
        .filter(|k| k.starts_with("lake/"))
        .map(|k| store.size(k) as usize)
        .sum();
    Ok(LakeFigures {
        records,
        objects: batches.len(),
        seconds,
        records_per_s: records as f64 / seconds,
        gzip_mb_per_s: gzip_bytes as f64 / 1e6 / seconds,
        json_mb_per_s: json_bytes as f64 / 1e6 / seconds,
        gzip_bytes,
        parquet_bytes,
        parquet_to_gzip: parquet_bytes as f64 / gzip_bytes.max(1) as f64,
        rows: report
            .rows
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect(),
        put_to_sql: None,
    })
}

/// `probes` times: a visit of a new cid put, then what `tally sql` does (bring the lake up to
/// date, copy it, query) until the answer holds it.
pub async fn put_to_sql(
    cloud: &LocalCloud, root: &std::path::Path, probes: usize,
) -> Result<Percentiles> {
    let stream = cloud.template.physical_name("VisitsStream");
    let bucket = cloud.template.physical_name("ArchiveBucket");
    let copy = root.join("target/bench/lake-copy");
    let mut ms = Vec::new();
    for n in 0..probes {
        let cid = format!("FRESH{}x{n}", chrono::Utc::now().timestamp_millis());
        let line = format!(r#"{{"cid":"{cid}","gndr":"female"}}"#);
        let put = put_all(
            &cloud.clients.kinesis,
            &stream,
            &[(cid.clone(), line.as_bytes())],
            |_| {},
        )
        .await;
        if put.accepted != 1 {
            bail!("the probe visit was not accepted");
        }
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(120);
        loop {
            cloud.flush(Duration::from_secs(120)).await?;
            copy_lake(&cloud.clients.s3, &bucket, &copy).await?;
            let answer = query_lake(
                root,
                &copy,
                &format!("SELECT count(*) FROM visits WHERE cid = '{cid}'"),
            )?;
            if answer
                .rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.as_u64())
                == Some(1)
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("{cid} never reached the lake");
            }
        }
        ms.push(acked.elapsed().as_secs_f64() * 1e3);
    }
    Percentiles::of(ms).ok_or_else(|| anyhow::anyhow!("no probe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_conversion_figure_counts_what_it_converted() {
        let f = conversion(2, 500).await.unwrap();
        assert_eq!((f.records, f.objects), (1000, 2));
        assert!(f.records_per_s > 0.0 && f.parquet_bytes > 0 && f.gzip_bytes > 0);
        assert!(
            f.json_mb_per_s > f.gzip_mb_per_s,
            "JSON is larger than its GZIP"
        );
    }
}
