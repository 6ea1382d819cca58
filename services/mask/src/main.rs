use clap::Parser;
use inpaint_mask::{Config, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _traces = inpaint_common::telemetry::init_service(&config.service, "inpaint-mask");
    let listener = tokio::net::TcpListener::bind(config.service.listen).await?;
    run(config, listener, inpaint_common::shutdown_signal()).await?;
    Ok(())
}
