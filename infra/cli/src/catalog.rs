//! `tally catalog`: each pipeline's Glue tables (made from the lake's table definitions) and a
//! named query per file of `queries/<pipeline>/`, headed by the template that declares them, to
//! paste there after a table or a query is added or changed (a test compares the two).

use std::io::Write;

use anyhow::Result;

use crate::Context;

#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, ctx: &Context) -> Result<()> {
    let template = ctx.template()?;
    let mut out = std::io::stdout().lock();
    for block in tally_stack::catalog::catalog_blocks(&ctx.root)? {
        // The template that declares any of them today; a new pipeline's goes into its own.
        let file = block
            .logical_ids
            .iter()
            .find_map(|id| template.resources.get(id))
            .map(|r| template.scopes[r.scope].file.clone());
        let place = match file {
            Some(f) => f
                .strip_prefix(&ctx.root)
                .unwrap_or(&f)
                .display()
                .to_string(),
            None => "its application's template (none declares them yet)".into(),
        };
        writeln!(out, "  # ---- {}: in {place}", block.pipeline)?;
        out.write_all(block.yaml.as_bytes())?;
    }
    Ok(())
}
