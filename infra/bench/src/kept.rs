//! Figures of runs of their own (`tally bench --only soak`, `--only faults`, `--only
//! lake_scaling`): each is a member of bench/report.json and a section of BENCHMARKS.md that the
//! full bench keeps as they are, and a new run of its kind replaces.

use serde_json::Value;

/// The runs whose figures are kept, by their report member.
pub const KEPT: [&str; 5] = [
    "soak",
    "faults",
    "lake_scaling",
    "lake_query_scans",
    "lake_day",
];

fn begin(key: &str) -> String {
    // The lake's three members come from one run.
    let run = if key.starts_with("lake_") {
        "lake_scaling"
    } else {
        key
    };
    format!("<!-- {key}: tally bench --only {run} -->")
}

fn end(key: &str) -> String {
    format!("<!-- /{key} -->")
}

/// The report's text with its member `key` replaced by `member` (pretty JSON) or added last,
/// every other member as it was (the report's own order, not a map's).
pub fn with_member(report: &str, key: &str, member: &str) -> String {
    let member = member.replace('\n', "\n  ");
    let alone = format!("{{\n  \"{key}\": {member}\n}}\n");
    if matches!(report.trim(), "" | "{}") {
        return alone;
    }
    let mut lines: Vec<&str> = report.trim_end().lines().collect();
    let opening = format!("  \"{key}\": ");
    if let Some(start) = lines.iter().position(|l| l.starts_with(&opening)) {
        let last = if lines[start].ends_with('{') || lines[start].ends_with('[') {
            (start + 1..lines.len())
                .find(|&i| matches!(lines[i], "  }" | "  }," | "  ]" | "  ],"))
                .unwrap_or(start)
        } else {
            start
        };
        lines.drain(start..=last);
    }
    while lines
        .last()
        .is_some_and(|l| l.trim().is_empty() || *l == "}")
    {
        lines.pop();
    }
    let mut body = lines.join("\n");
    if body.trim() == "{" || body.is_empty() {
        return alone;
    }
    if body.ends_with(',') {
        body.pop();
    }
    format!("{body},\n  \"{key}\": {member}\n}}\n")
}

/// `markdown` with the section of `key` in place of its old one (or at the end).
pub fn with_section(markdown: &str, key: &str, section: &str) -> String {
    let (b, e) = (begin(key), end(key));
    let section = format!("{b}\n{}\n{e}\n", section.trim_end());
    match (markdown.find(&b), markdown.find(&e)) {
        (Some(x), Some(y)) if y > x => format!(
            "{}{section}{}",
            &markdown[..x],
            markdown[y + e.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n\n{section}", markdown.trim_end()),
    }
}

/// The section of a kept run's figures.
pub fn section(key: &str, figures: &Value) -> String {
    match key {
        "soak" => soak_markdown(figures),
        "lake_scaling" => lake_scaling_markdown(figures),
        "lake_query_scans" => lake_query_scans_markdown(figures),
        "lake_day" => lake_day_markdown(figures),
        _ => faults_markdown(figures),
    }
}

/// A full bench's report and BENCHMARKS.md with the kept runs of the old report carried over.
pub fn carry_over(
    old_report: &Value, mut report: String, mut markdown: String,
) -> (String, String) {
    for key in KEPT {
        let Some(figures) = old_report.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let pretty = serde_json::to_string_pretty(figures).unwrap_or_default();
        report = with_member(&report, key, &pretty);
        markdown = with_section(&markdown, key, &section(key, figures));
    }
    (report, markdown)
}

fn soak_markdown(soak: &Value) -> String {
    let mut rows = String::new();
    if let Some(growth) = soak["rss_growth_percent"].as_object() {
        for (kind, pct) in growth {
            let mb = &soak["rss_mb"][kind];
            let late = &soak["rss_growth_second_half_percent"][kind];
            rows.push_str(&format!(
                "| {kind} | {} | {} | {} | {pct}% | {late}% |\n",
                mb[0], mb[1], mb[2]
            ));
        }
    }
    let mut pipelines = String::new();
    if let Some(p) = soak["pipelines"].as_object() {
        for (name, v) in p {
            pipelines.push_str(&format!("| {name} | {} | {} |\n", v[0], v[1]));
        }
    }
    format!(
        "## Soak: all four pipelines at once, for {:.0} s\n\n\
         `tally bench --only soak`. Fed {} events at {:.1} events/s in all ({:.1} asked: half of \
         what every pipeline sustained together), {} build of the functions. **Lost: {}.** Every \
         pipeline had counted everything {:.1} s after the last record was fed.\n\n\
         | pipeline | fed | counted |\n|---|---|---|\n{pipelines}\n\
         Resident memory after the first fifth of the run, at half time and at its end (MB; \
         functions per instance). Memory that only warms up grows in the first half; the \
         emulators keep every record (24 hours) and every item the soak made (each record a key \
         of its own, so that nothing lost can hide), so theirs grows with the data in both \
         halves.\n\n| process | MB then | MB at half time | MB at the end | growth | growth in \
         the second half |\n|---|---|---|---|---|---|\n{rows}",
        soak["seconds"].as_f64().unwrap_or(0.0),
        soak["events"],
        soak["offered_events_per_s"].as_f64().unwrap_or(0.0),
        soak["rate_events_per_s"].as_f64().unwrap_or(0.0),
        soak["build"].as_str().unwrap_or("?"),
        soak["lost"],
        soak["lag_seconds"].as_f64().unwrap_or(0.0),
    )
}

fn faults_markdown(faults: &Value) -> String {
    let mut rows = String::new();
    for run in faults["runs"].as_array().into_iter().flatten() {
        rows.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0}% | {} |\n",
            run["pipelines"].as_str().unwrap_or("?"),
            run["without_events_per_s"].as_f64().unwrap_or(0.0),
            run["with_events_per_s"].as_f64().unwrap_or(0.0),
            run["cost_percent"].as_f64().unwrap_or(0.0),
            run["settled_with"]
                .as_bool()
                .map_or("?", |s| if s { "yes" } else { "no" }),
        ));
    }
    format!(
        "## What AWS's failures cost: the overloaded runs with and without faults\n\n\
         `tally bench --only faults`: the three overloaded runs ({:.0} s each, 1,667 events/s \
         offered per pipeline, {} build), once on a quiet cloud and once with `--faults {}`. \
         Every answer stays exact under the faults (`tests/integration/faults.rs`); what they \
         cost is throughput, spent on retries and on batches run again.\n\n\
         | pipelines | events/s without | events/s with faults | cost | settled with faults |\n\
         |---|---|---|---|---|\n{rows}",
        faults["seconds"].as_f64().unwrap_or(0.0),
        faults["build"].as_str().unwrap_or("?"),
        faults["spec"].as_str().unwrap_or("?"),
    )
}

fn lake_scaling_markdown(rows: &Value) -> String {
    let mut table = String::new();
    for r in rows.as_array().into_iter().flatten() {
        table.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.0} | {} | {:.2} | {} | {:.1} |\n",
            r["table"].as_str().unwrap_or("?"),
            r["table_rows"],
            r["new_rows"],
            r["seconds"].as_f64().unwrap_or(0.0),
            r["new_rows"].as_f64().unwrap_or(0.0) / r["seconds"].as_f64().unwrap_or(1.0).max(1e-9),
            r["files_after"],
            r["compaction_seconds"].as_f64().unwrap_or(0.0),
            r["compaction_merges"],
            r["compaction_mb_read"].as_f64().unwrap_or(0.0),
        ));
    }
    format!(
        "## The lake as it grows: the same new data into 1, 10 and 30 million rows\n\n\
         `tally bench --only lake_scaling`: generated app events (seed 002's shape, 8 types) and \
         Meetup RSVPs, archived as Firehose delivers them and converted by the lake writer in a \
         folder, then at each size 100,000 more (a minute at seed 003's rate) converted in one \
         invocation: its seconds, and apart from them the compaction it started. Merge on read (docs/lake.md): a conversion writes its \
         new rows and reads nothing already there, so its time should not grow with the table.\n\n\
         | table | rows before | new rows | seconds | new rows/s | files after | compaction s | merges | compaction MB read |\n\
         |---|---|---|---|---|---|---|---|---|\n{table}"
    )
}

fn lake_query_scans_markdown(scans: &Value) -> String {
    let mut table = String::new();
    for q in scans.as_array().into_iter().flatten() {
        let tables: Vec<&str> = q["tables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        table.push_str(&format!(
            "| `{}` | {} | {:.1} | {:.1} |\n",
            q["query"].as_str().unwrap_or("?"),
            tables.join(", "),
            q["mb_scanned"].as_f64().unwrap_or(0.0),
            q["mb_of_its_tables"].as_f64().unwrap_or(0.0),
        ));
    }
    format!(
        "## What Athena would scan for each query, at the largest size\n\n\
         From the Parquet footers of the lake above (30 million events, 30 million RSVPs): the \
         compressed column chunks of the columns each query names (and, through a view, the id \
         and the columns that choose an id's row), in every partition (no `dt` filter). Athena \
         bills $5 a TB, at least 10 MB a query.\n\n\
         | query | tables | MB scanned | MB of those tables |\n|---|---|---|---|\n{table}"
    )
}

fn lake_day_markdown(day: &Value) -> String {
    let mut rows = String::new();
    if let Some(most) = day["most_files_per_partition"].as_object() {
        for (table, n) in most {
            rows.push_str(&format!("| {table} | {n} |\n"));
        }
    }
    format!(
        "## Files per partition after a day\n\n\
         {} conversions, one a minute, of {} app events in all: compaction merged {} times, and \
         no partition ever held more than {} files.\n\n\
         | table | most files in one partition at the end |\n|---|---|\n{rows}",
        day["conversions"], day["events"], day["compaction_merges"], day["most_files_ever"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_run_replaces_its_own_member_and_section_and_keeps_the_rest_in_order() {
        let report = "{\n  \"b\": 1,\n  \"a\": {\n    \"x\": 2\n  }\n}\n";
        let once = with_member(report, "soak", "{\n  \"lost\": 0\n}");
        assert_eq!(
            once,
            "{\n  \"b\": 1,\n  \"a\": {\n    \"x\": 2\n  },\n  \"soak\": {\n    \"lost\": 0\n  }\n}\n"
        );
        let twice = with_member(&once, "soak", "{\n  \"lost\": 1\n}");
        assert_eq!(twice, once.replace("\"lost\": 0", "\"lost\": 1"));
        let both = with_member(&twice, "faults", "{\n  \"runs\": []\n}");
        let v: Value = serde_json::from_str(&both).unwrap();
        assert_eq!(
            (v["soak"]["lost"].as_u64(), v["b"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(with_member("{}", "soak", "{}"), "{\n  \"soak\": {}\n}\n");

        let md = with_section("# B\n", "soak", "## Soak\nlost 0\n");
        assert!(md.contains(&begin("soak")) && md.contains("lost 0"));
        let md = with_section(&md, "soak", "## Soak\nlost 3\n");
        assert_eq!(md.matches(&begin("soak")).count(), 1);
        assert!(md.contains("lost 3") && !md.contains("lost 0"));
        let (r, m) = carry_over(
            &serde_json::json!({"soak": {"lost": 0, "events": 5}}),
            "{\n  \"a\": 1\n}\n".into(),
            "# New\n".into(),
        );
        assert!(
            r.contains("\"soak\"") && m.contains("**Lost: 0.**"),
            "{r}\n{m}"
        );
    }
}
