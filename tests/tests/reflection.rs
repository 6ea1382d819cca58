//! Reflection tells the truth: each port lists only the services it serves
//! (a client that lists the gateway's port and calls what it finds must not
//! meet UNIMPLEMENTED).

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use support::start_cluster;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn listed_services(addr: SocketAddr) -> BTreeSet<String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers.message().await.expect("a message").expect("one");
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

fn names(own: &str) -> BTreeSet<String> {
    [
        own,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_port_lists_only_what_it_serves() {
    let cluster = start_cluster(None).await;
    for (addr, own) in [
        (cluster.gateway, "inpaint.v1.Inpainting"),
        (cluster.segmentation, "inpaint.v1.Segmentation"),
        (cluster.mask, "inpaint.v1.Mask"),
        (cluster.worker, "inpaint.v1.InpaintWorker"),
    ] {
        assert_eq!(listed_services(addr).await, names(own), "port of {own}");
    }
    cluster.shutdown().await.expect("clean shutdown");
}
