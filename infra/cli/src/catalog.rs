//! `tally catalog`: the Glue tables of template.yaml as the lake's table definitions make them,
//! and a named query per file of `queries/`, to paste into the template after a table or a query
//! is added or changed (a test compares the two).

use std::io::Write;

use anyhow::Result;

use crate::Context;

#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, ctx: &Context) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(tally_stack::catalog::glue_tables_yaml().as_bytes())?;
    out.write_all(tally_stack::catalog::named_queries_yaml(&ctx.root)?.as_bytes())?;
    Ok(())
}
