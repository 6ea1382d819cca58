//! `inpaint health`: an exec probe, so the answer is also the exit code.

use inpaint_cli::probe::HealthArgs;
use tonic_health::pb::health_check_response::ServingStatus;

/// Prints the service's status; exits 1 unless it is SERVING.
pub async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let status = inpaint_cli::probe::check(&args).await?;
    println!("{}", status.as_str_name());
    if status != ServingStatus::Serving {
        std::process::exit(1);
    }
    Ok(())
}
