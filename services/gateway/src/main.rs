use clap::Parser;
use inpaint_gateway::{Config, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    inpaint_common::telemetry::init(config.service.log_format);
    let listener = tokio::net::TcpListener::bind(config.service.listen).await?;
    run(config, listener, inpaint_common::shutdown_signal()).await?;
    Ok(())
}
