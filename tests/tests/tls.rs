//! TLS on the public port, mTLS between the gateway and its stages, a
//! certificate replaced on disk while serving, and Redis over TLS with a
//! password: certificates made by rcgen for each run, real sockets.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use inpaint_cli::embedded::{ClusterTls, JobSettings};
use inpaint_imaging::PixelBox;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    InpaintParams, InpaintRequest, JobState, SubmitJobRequest, inpaint_request::Target,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A certificate authority of the test's own.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn authority(name: &str) -> Authority {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Authority {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A leaf certificate for localhost and 127.0.0.1 (server or client use)
/// and its key, as PEM.
fn leaf(ca: &Authority, client: bool) -> (String, String) {
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Replaces a file in one step (as a Secret volume update does).
fn replace(path: &Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inpaint-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The CA, the services' certificate and the gateway's client certificate,
/// as files.
fn cluster_tls(dir: &Path, ca: &Authority) -> ClusterTls {
    let (cert, key) = leaf(ca, false);
    let (client_cert, client_key) = leaf(ca, true);
    ClusterTls {
        cert: write(dir, "server.pem", &cert),
        key: write(dir, "server.key", &key),
        ca: write(dir, "ca.pem", &ca.pem),
        client_cert: write(dir, "client.pem", &client_cert),
        client_key: write(dir, "client.key", &client_key),
        stage_mtls: true,
    }
}

/// A TLS channel to 127.0.0.1:`port` trusting `ca` (None: the system's
/// roots), presenting `identity` when given.
async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: Option<&str>,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().domain_name("127.0.0.1");
    tls = match ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
        None => tls.with_native_roots(),
    };
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// Whether the server at `addr` answers a health check over TLS.
async fn healthy_over_tls(
    addr: std::net::SocketAddr,
    ca: Option<&str>,
    identity: Option<(&str, &str)>,
) -> bool {
    let Ok(channel) = tls_channel(addr, ca, identity).await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

fn hole_request() -> InpaintRequest {
    let image = photo_bytes("astronaut.png");
    InpaintRequest {
        target: Some(Target::Mask(box_mask_png(
            512,
            512,
            PixelBox::new(200, 200, 40, 40),
        ))),
        image,
        params: Some(InpaintParams {
            engine: "telea".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_every_port_mtls_to_the_stages_and_certificate_reload() {
    let dir = scratch("cluster");
    let ca = authority("inpaint test CA");
    let tls = cluster_tls(&dir, &ca);
    let mut config = cluster_config();
    config.tls = Some(tls.clone());
    let cluster = start_cluster_with(config).await;

    // Plain HTTP/2 to the TLS port: no answer.
    let plain = Endpoint::from_shared(format!("http://{}", cluster.gateway))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let refused = InpaintingClient::new(channel)
            .inpaint(hole_request())
            .await
            .unwrap_err();
        assert_ne!(refused.code(), tonic::Code::Ok);
    }
    // TLS without our CA: the handshake fails.
    assert!(tls_channel(cluster.gateway, None, None).await.is_err());
    // With it: a request runs through the gateway and, over mTLS, the
    // mask service and the worker.
    let channel = tls_channel(cluster.gateway, Some(&ca.pem), None)
        .await
        .expect("TLS with the CA connects");
    let mut client = InpaintingClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let response = client.inpaint(hole_request()).await.expect("inpaints");
    let result = decode_rgb(&response.into_inner().image);
    let original = decode_rgb(&photo_bytes("astronaut.png"));
    assert!(changed_in(&original, &result, PixelBox::new(200, 200, 40, 40)) > 0);
    // A job: the runner's stage calls go over mTLS too.
    let job = client
        .submit_job(SubmitJobRequest {
            request: Some(hole_request()),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        last_state(&mut client, &job.id).await,
        Some(JobState::Succeeded)
    );

    // The stages refuse a peer without a client certificate of the CA,
    // even one that trusts their certificate...
    let client_cert = std::fs::read_to_string(&tls.client_cert).unwrap();
    let client_key = std::fs::read_to_string(&tls.client_key).unwrap();
    for stage in [cluster.segmentation, cluster.mask, cluster.worker] {
        assert!(
            !healthy_over_tls(stage, Some(&ca.pem), None).await,
            "{stage} answered a peer without a client certificate"
        );
        assert!(healthy_over_tls(stage, Some(&ca.pem), Some((&client_cert, &client_key))).await);
    }
    // The exec probe the TLS overlay uses (`inpaint health`) gets through
    // with the certificate, and reports failure without it.
    // It dials 127.0.0.1 and checks the name the certificate carries.
    let mut probe = inpaint_cli::probe::HealthArgs {
        url: format!("https://{}", cluster.mask),
        service: String::new(),
        ca: Some(tls.ca.clone()),
        cert: Some(tls.client_cert.clone()),
        key: Some(tls.client_key.clone()),
        server_name: Some("localhost".into()),
        no_verify: false,
        timeout_secs: 5,
    };
    let serving = |status: tonic_health::pb::health_check_response::ServingStatus| {
        status.as_str_name() == "SERVING"
    };
    assert!(inpaint_cli::probe::check(&probe).await.is_ok_and(serving));
    probe.server_name = Some("elsewhere.example".into());
    assert!(inpaint_cli::probe::check(&probe).await.is_err());
    (probe.cert, probe.key, probe.server_name) = (None, None, None);
    assert!(inpaint_cli::probe::check(&probe).await.is_err());
    // The gateway's probe takes whatever certificate the public port shows.
    let gateway_probe = inpaint_cli::probe::HealthArgs {
        url: format!("https://{}", cluster.gateway),
        ca: None,
        no_verify: true,
        ..probe
    };
    assert!(
        inpaint_cli::probe::check(&gateway_probe)
            .await
            .is_ok_and(serving)
    );
    // ...and one whose certificate another CA signed.
    let stranger = authority("another CA");
    let (stranger_cert, stranger_key) = leaf(&stranger, true);
    assert!(
        !healthy_over_tls(
            cluster.mask,
            Some(&ca.pem),
            Some((&stranger_cert, &stranger_key))
        )
        .await
    );

    // The certificate is replaced on disk (a renewal by a new CA): new
    // connections get it within a couple of seconds, without a restart.
    let renewed = authority("renewed CA");
    let (cert, key) = leaf(&renewed, false);
    replace(&tls.key, &key);
    replace(&tls.cert, &cert);
    let mut reloaded = false;
    for _ in 0..40 {
        if healthy_over_tls(cluster.gateway, Some(&renewed.pem), None).await {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "the gateway still presents the old certificate");
    assert!(!healthy_over_tls(cluster.gateway, Some(&ca.pem), None).await);

    cluster.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_redis_over_tls_with_a_password() {
    let dir = scratch("redis");
    let ca = authority("redis test CA");
    let (cert, key) = leaf(&ca, false);
    let (cert, key, ca_file) = (
        write(&dir, "redis.pem", &cert),
        write(&dir, "redis.key", &key),
        write(&dir, "ca.pem", &ca.pem),
    );
    let redis = start_redis_tls(&cert, &key, &ca_file, "s3cret");
    let ttl = Duration::from_secs(60);
    use inpaint_gateway::jobs::redis::{RedisStore, client};
    // Without the password, or without TLS, Redis says no; the password
    // given apart from the URL (INPAINT_REDIS_PASSWORD) is used.
    let port = redis.url.rsplit(':').next().unwrap();
    let no_password = format!("rediss://127.0.0.1:{port}");
    let connect = |password: Option<&'static str>| {
        let redis_client = client(&no_password, password, Some(&ca_file)).unwrap();
        RedisStore::connect_client(redis_client, "t", ttl)
    };
    assert!(connect(None).await.is_err());
    assert!(connect(Some("wrong")).await.is_err());
    assert!(connect(Some("s3cret")).await.is_ok());
    let plain = format!("redis://:s3cret@127.0.0.1:{port}");
    let plain = tokio::time::timeout(
        Duration::from_secs(5),
        RedisStore::connect(&plain, "t", ttl),
    );
    assert!(
        !matches!(plain.await, Ok(Ok(_))),
        "plain TCP reached a TLS-only Redis"
    );

    let mut config = cluster_config();
    config.jobs = JobSettings {
        redis_url: Some(redis.url.clone()),
        redis_tls_ca: Some(ca_file.clone()),
        ..JobSettings::default()
    };
    let cluster = start_cluster_with(config).await;
    let mut client = inpaint_cli::client::connect(&cluster.gateway_url())
        .await
        .unwrap();
    let job = client
        .submit_job(SubmitJobRequest {
            request: Some(small_job_request("telea")),
            idempotency_key: "over-tls".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        last_state(&mut client, &job.id).await,
        Some(JobState::Succeeded)
    );
    cluster.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
