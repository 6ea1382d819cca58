//! Log and trace set-up shared by every binary.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, ServiceArgs};

/// Installs the global subscriber, logs only: `RUST_LOG` filters (default
/// `info`). Calling it again (several services in one process) is harmless.
pub fn init(format: LogFormat) {
    install(format, None);
}

/// Logs, and traces exported over OTLP (gRPC) to `settings.otlp_endpoint`
/// when it is set, as `service`. Keep the returned provider until exit
/// (dropping it flushes the spans still batched).
pub fn init_service(settings: &ServiceArgs, service: &'static str) -> Option<SdkTracerProvider> {
    let Some(endpoint) = settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) else {
        init(settings.log_format);
        return None;
    };
    use opentelemetry_otlp::WithExportConfig;
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
    {
        Ok(exporter) => {
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service).build())
                .build();
            install(settings.log_format, Some(provider.clone()));
            tracing::info!(%endpoint, "traces exported over OTLP");
            Some(provider)
        }
        Err(err) => {
            init(settings.log_format);
            tracing::error!(%endpoint, %err, "cannot export traces; logs only");
            None
        }
    }
}

/// Logs, and every span handed to `exporter` as it ends (tests: an
/// in-memory exporter).
pub fn init_with_exporter(
    format: LogFormat,
    exporter: impl SpanExporter + 'static,
) -> SdkTracerProvider {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("inpaint").build())
        .build();
    install(format, Some(provider.clone()));
    provider
}

fn install(format: LogFormat, traces: Option<SdkTracerProvider>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    // JSON lines carry the fields of the span they were written in, the
    // call's trace id among them.
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_target(true)
            .boxed(),
    };
    // Spans are exported whatever RUST_LOG says of logs: our own crates'
    // spans at info and above (calls, stages, jobs), nothing from the
    // libraries underneath.
    let ours = [
        "inpaint_common",
        "inpaint_gateway",
        "inpaint_segmentation",
        "inpaint_mask",
        "inpaint_worker",
    ];
    let span_filter = ours.into_iter().fold(Targets::new(), |targets, name| {
        targets.with_target(name, tracing::Level::INFO)
    });
    let spans = traces.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("inpaint"))
            .with_filter(span_filter)
    });
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(spans)
        .try_init();
}
