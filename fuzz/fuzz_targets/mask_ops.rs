//! The mask-operator pipeline as the mask service runs it: operations
//! decoded from the fuzzer's bytes (any protobuf the wire could carry),
//! validated, then applied to two region masks. Valid pipelines give masks
//! of the image's size; invalid ones an error; neither panics.
#![no_main]

use inpaint_imaging::GrayImage;
use inpaint_proto::v1::InpaintParams;
use libfuzzer_sys::fuzz_target;
use prost::Message;

const SIDE: (u32, u32) = (40, 28);

/// A blotchy region mask, varied by `seed`.
fn region(seed: u8) -> GrayImage {
    let pixels = (0..SIDE.1)
        .flat_map(|y| (0..SIDE.0).map(move |x| (x, y)))
        .map(|(x, y)| {
            let on = (x * 7 + y * 3 + seed as u32) % 11 < 4 && x > 5 && y > 3;
            if on { 255 } else { 0 }
        })
        .collect();
    GrayImage::from_raw(SIDE.0, SIDE.1, pixels).expect("sized")
}

fuzz_target!(|data: &[u8]| {
    let Ok(params) = InpaintParams::decode(data) else {
        return;
    };
    let ops = params.mask_ops;
    if inpaint_mask::ops::validate(&ops, SIDE.0, SIDE.1).is_err() {
        return;
    }
    let seed = data.first().copied().unwrap_or(0);
    if let Ok(out) = inpaint_mask::ops::apply(&ops, vec![region(seed), region(seed ^ 0x5a)]) {
        for mask in out {
            assert_eq!((mask.width(), mask.height()), SIDE);
        }
    }
});
