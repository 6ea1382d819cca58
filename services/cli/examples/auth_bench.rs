//! `make bench-auth`: what API keys and TLS cost on the gateway. Four
//! embedded clusters: plain; with a keys file (every call carries its key);
//! with keys and TLS on the gateway's port; and with the gateway's stages
//! behind mTLS as well. The same work on each, five rounds in rotating
//! order (medians): synchronous Inpaint one at a time (p50) and jobs at
//! concurrency 32 (jobs/s), 512x512 Telea. Prints key=value lines:
//!   bench=auth size=512 mode=plain|keys|keys_tls|keys_tls_mtls c1_p50_ms=.. c32_jobs_per_s=..
//!   bench=auth_cost|tls_cost|stage_mtls_cost size=512 c1_p50_pct=.. c32_jobs_per_s_pct=.. same_result_bytes=..
//! (auth_cost: keys over plain; tls_cost: TLS on the gateway over keys
//! alone; stage_mtls_cost: mTLS to the stages over TLS on the gateway.)

use std::time::{Duration, Instant};

use inpaint_cli::embedded::{Cluster, ClusterConfig, ClusterTls, JobSettings};
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use tonic::transport::Channel;

#[path = "shared/load.rs"]
mod load;
use load::{inputs, percentile, repo, request, run_jobs, with_key};

const KEY: &str = "bench-key";

async fn start(api_keys: Option<std::path::PathBuf>, tls: Option<ClusterTls>) -> Cluster {
    let cluster = Cluster::start(ClusterConfig {
        tls,
        ort_dylib: repo().join("models/cache/onnxruntime/libonnxruntime.so"),
        models_dir: repo().join("models/cache"),
        jobs: JobSettings {
            runners: 32,
            api_keys,
            ..JobSettings::default()
        },
        ..ClusterConfig::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_ready(false, Duration::from_secs(60))
        .await
        .expect("ready");
    cluster
}

/// (p50 ms of 30 synchronous calls one at a time, jobs/s of 96 jobs 32 at
/// a time, the result image of the first call).
async fn measure(
    client: &InpaintingClient<Channel>,
    key: Option<&str>,
    image: &[u8],
    mask: &[u8],
) -> (f64, f64, Vec<u8>) {
    let mut latencies = vec![];
    let mut result = vec![];
    for i in 0..31 {
        let start = Instant::now();
        let answer = client
            .clone()
            .inpaint(with_key(key, request(image, mask)))
            .await
            .expect("inpaint");
        if i == 0 {
            result = answer.into_inner().image;
        }
        if i > 0 {
            latencies.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let (_, secs) = run_jobs(std::slice::from_ref(client), (image, mask), key, 32, 96).await;
    (percentile(&latencies, 0.5), 96.0 / secs, result)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A CA, the services' certificate and the gateway's client certificate
/// (rcgen), written to `dir`.
fn certificates(dir: &std::path::Path) -> ClusterTls {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca_pem = ca_params.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |usage: ExtendedKeyUsagePurpose, name: &str| {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("params");
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("cert").pem();
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert).expect("write");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");
        (cert_path, key_path)
    };
    let (cert, key) = leaf(ExtendedKeyUsagePurpose::ServerAuth, "server");
    let (client_cert, client_key) = leaf(ExtendedKeyUsagePurpose::ClientAuth, "client");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write");
    ClusterTls {
        cert,
        key,
        ca,
        client_cert,
        client_key,
        stage_mtls: false,
    }
}

async fn client(cluster: &Cluster, tls: Option<&ClusterTls>) -> InpaintingClient<Channel> {
    let mut endpoint = inpaint_common::endpoint(&cluster.gateway_url()).expect("url");
    if let Some(tls) = tls {
        let client_tls =
            inpaint_common::tls::ClientTls::load(inpaint_common::tls::ClientTlsFiles {
                ca: Some(tls.ca.clone()),
                ..Default::default()
            })
            .expect("CA");
        endpoint = endpoint
            .tls_config(client_tls.config("127.0.0.1").0)
            .expect("tls");
    }
    let limit = 64 << 20;
    InpaintingClient::new(endpoint.connect().await.expect("gateway"))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit)
}

fn cost(name: &str, base: (f64, f64), with: (f64, f64), same: bool) {
    println!(
        "bench={name} size=512 c1_p50_pct={:.1} c32_jobs_per_s_pct={:.1} same_result_bytes={same}",
        (with.0 / base.0 - 1.0) * 100.0,
        (1.0 - with.1 / base.1) * 100.0,
    );
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("inpaint-auth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let keys = dir.join("keys.toml");
    let hash = inpaint_gateway::auth::hash_key(KEY);
    std::fs::write(
        &keys,
        format!("[[keys]]\ntenant = \"bench\"\nsha256 = \"{hash}\"\n"),
    )
    .expect("keys file");
    let tls = certificates(&dir);
    let mtls = ClusterTls {
        stage_mtls: true,
        ..tls.clone()
    };
    let modes = [
        ("plain", start(None, None).await, None),
        ("keys", start(Some(keys.clone()), None).await, Some(KEY)),
        (
            "keys_tls",
            start(Some(keys.clone()), Some(tls.clone())).await,
            Some(KEY),
        ),
        (
            "keys_tls_mtls",
            start(Some(keys), Some(mtls)).await,
            Some(KEY),
        ),
    ];
    let mut clients = vec![];
    for (i, (_, cluster, _)) in modes.iter().enumerate() {
        clients.push(client(cluster, (i >= 2).then_some(&tls)).await);
    }
    let (image, mask, _) = inputs(512);
    let mut figures = vec![(vec![], vec![]); modes.len()];
    // Every side must give the same bytes: keys and TLS change who may ask
    // and how, not what is answered.
    let mut results = vec![vec![]; modes.len()];
    // Five rounds, the order rotated every round (the machine warms up).
    for round in 0..5 {
        for step in 0..modes.len() {
            let i = (round + step) % modes.len();
            let (p50, rate, result) = measure(&clients[i], modes[i].2, &image, &mask).await;
            figures[i].0.push(p50);
            figures[i].1.push(rate);
            results[i] = result;
        }
    }
    let medians: Vec<(f64, f64)> = figures
        .into_iter()
        .map(|(p50, rate)| (median(p50), median(rate)))
        .collect();
    for (i, (mode, ..)) in modes.iter().enumerate() {
        let (p50, rate) = medians[i];
        println!("bench=auth size=512 mode={mode} c1_p50_ms={p50:.2} c32_jobs_per_s={rate:.2}");
    }
    let same = |a: usize, b: usize| results[a] == results[b] && !results[a].is_empty();
    cost("auth_cost", medians[0], medians[1], same(0, 1));
    cost("tls_cost", medians[1], medians[2], same(1, 2));
    cost("stage_mtls_cost", medians[2], medians[3], same(2, 3));
    for (_, cluster, _) in modes {
        cluster.shutdown().await.expect("shutdown");
    }
    let _ = std::fs::remove_dir_all(dir);
}
