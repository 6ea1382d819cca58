//! The segmentation models on real photos with known answers, through the
//! segmentation service's gRPC socket.

mod support;

use inpaint_common::tensor::{from_rgb, to_gray};
use inpaint_imaging::{PixelBox, RgbImage};
use inpaint_proto::v1::segmentation_client::SegmentationClient;
use inpaint_proto::v1::{
    Box as WireBox, DetectionFilter, FaceDetection, Point, PromptSegmentation, RegionOrder,
    RegionSource, SegmentRequest, SegmentResponse, TextDetection, region_source::Source,
};
use support::*;
use tonic::Code;
use tonic::transport::Channel;

async fn client(cluster: &inpaint_cli::embedded::Cluster) -> SegmentationClient<Channel> {
    SegmentationClient::connect(format!("http://{}", cluster.segmentation))
        .await
        .expect("segmentation reachable")
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

fn source(source: Source) -> RegionSource {
    RegionSource {
        source: Some(source),
        filter: None,
    }
}

async fn segment(
    client: &mut SegmentationClient<Channel>,
    image: &RgbImage,
    sources: Vec<RegionSource>,
) -> Result<SegmentResponse, tonic::Status> {
    client
        .segment(SegmentRequest {
            image: Some(from_rgb(image)),
            sources,
        })
        .await
        .map(|r| r.into_inner())
}

fn to_box(b: &WireBox) -> PixelBox {
    PixelBox::new(b.x, b.y, b.width, b.height)
}

fn iou(a: PixelBox, b: PixelBox) -> f64 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = a.right().min(b.right());
    let y1 = a.bottom().min(b.bottom());
    let inter = x1.saturating_sub(x0) as f64 * y1.saturating_sub(y0) as f64;
    inter / ((a.area() + b.area()) as f64 - inter).max(1.0)
}

fn click(x: f32, y: f32) -> Point {
    Point {
        x,
        y,
        background: false,
    }
}

fn prompt(points: Vec<Point>, frame: Option<WireBox>) -> RegionSource {
    source(Source::Prompt(PromptSegmentation {
        points,
        r#box: frame,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explore() {
    let cluster = start_cluster(None).await;
    let mut seg = client(&cluster).await;
    let (_, lettered, inked) = lettering::lettered_coffee();
    let image =
        RgbImage::from_raw(lettered.width(), lettered.height(), lettered.into_raw()).unwrap();
    let found = segment(
        &mut seg,
        &image,
        vec![source(Source::Text(TextDetection::default()))],
    )
    .await
    .unwrap();
    for r in &found.regions {
        eprintln!("text {:?} {}", r.r#box, r.score);
    }
    let masks: Vec<_> = found
        .regions
        .iter()
        .map(|r| to_gray(r.mask.clone(), "m").unwrap())
        .collect();
    let missed = inked
        .iter()
        .filter(|&&(x, y)| {
            !masks
                .iter()
                .any(|m| m.as_raw()[(y * image.width() + x) as usize] > 0)
        })
        .count();
    eprintln!("missed {missed} of {}", inked.len());
    let miss: Vec<_> = inked
        .iter()
        .filter(|&&(x, y)| {
            !masks
                .iter()
                .any(|m| m.as_raw()[(y * image.width() + x) as usize] > 0)
        })
        .collect();
    eprintln!("{:?}", &miss[..miss.len().min(40)]);
    let coffee = decode_rgb(&photo_bytes("coffee.png"));
    for (x, y) in [(365.0, 290.0), (410.0, 80.0), (230.0, 270.0)] {
        let r = segment(&mut seg, &coffee, vec![prompt(vec![click(x, y)], None)])
            .await
            .unwrap();
        eprintln!(
            "click {x},{y}: {:?} {:?}",
            r.regions
                .iter()
                .map(|r| (r.r#box, r.score))
                .collect::<Vec<_>>(),
            r.reports
        );
        let m = to_gray(r.regions[0].mask.clone(), "m").unwrap();
        let img = image::GrayImage::from_raw(m.width(), m.height(), m.into_raw()).unwrap();
        img.save(format!("/tmp/sam_{x}_{y}.png")).unwrap();
    }
    cluster.shutdown().await.unwrap();
}
