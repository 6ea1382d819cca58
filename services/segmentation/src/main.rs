use clap::Parser;
use inpaint_segmentation::{Config, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _traces = inpaint_common::telemetry::init_service(&config.service, "inpaint-segmentation");
    let listener = tokio::net::TcpListener::bind(config.service.listen).await?;
    run(config, listener, inpaint_common::shutdown_signal()).await?;
    Ok(())
}
