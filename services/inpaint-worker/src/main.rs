use clap::Parser;
use inpaint_worker::{Config, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _traces = inpaint_common::telemetry::init_service(&config.service, "inpaint-worker");
    let listener = tokio::net::TcpListener::bind(config.service.listen).await?;
    run(config, listener, inpaint_common::shutdown_signal()).await?;
    Ok(())
}
