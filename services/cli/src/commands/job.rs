//! `inpaint job`: watch, get or cancel one job.

use std::time::Duration;

use inpaint_cli::client::{self, authed};
use inpaint_cli::retry::{Retrier, follow_job};
use inpaint_proto::v1::{CancelJobRequest, GetJobRequest, JobEvent};

use crate::args::JobCommand;

/// Runs one job subcommand against its gateway.
pub async fn job(command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Watch {
            id,
            gateway,
            retry_secs,
        } => {
            let mut client = client::connect(&gateway).await?;
            let mut retrier = Retrier::new(&gateway, Duration::from_secs(retry_secs));
            follow_job(&mut client, &mut retrier, &id, |e| {
                println!("{}", event_line(e));
            })
            .await?;
        }
        JobCommand::Get { id, gateway } => {
            let job = client::connect(&gateway)
                .await?
                .get_job(authed(GetJobRequest { id }))
                .await?
                .into_inner();
            println!("{job:#?}");
        }
        JobCommand::Cancel { id, gateway } => {
            let job = client::connect(&gateway)
                .await?
                .cancel_job(authed(CancelJobRequest { id }))
                .await?
                .into_inner();
            println!(
                "id={} state={:?} cancel_requested={}",
                job.id,
                job.state(),
                job.cancel_requested
            );
        }
    }
    Ok(())
}

/// One `job watch` line: the parts an event lacks are left out.
fn event_line(e: &JobEvent) -> String {
    let regions = if e.regions_total > 0 {
        format!(" {}/{}", e.regions_done, e.regions_total)
    } else {
        String::new()
    };
    let error = if e.error.is_empty() {
        String::new()
    } else {
        format!(" error={:?}", e.error)
    };
    let step = if e.steps > 0 {
        format!(" region={} step={}/{}", e.region, e.step, e.steps)
    } else {
        String::new()
    };
    format!(
        "seq={} state={:?} stage={}{regions}{step}{error}",
        e.sequence,
        e.state(),
        e.stage
    )
}
