//! Public messages as they arrive on the wire: any bytes decoded as a
//! SubmitJobsRequest (every job a SubmitJobRequest holding an
//! InpaintRequest), then the checks the gateway runs before touching an
//! image or a stage: the target's detectors, the parameters (ranges, enums,
//! Stable Diffusion settings) and the region overrides against an image
//! whose longer side the first byte picks. Each gives Ok or a named
//! INVALID_ARGUMENT, never a panic.
#![no_main]

use inpaint_gateway::error::Error;
use inpaint_gateway::pipeline::validate;
use inpaint_gateway::{regions, targets};
use inpaint_proto::v1::inpaint_request::Target;
use inpaint_proto::v1::SubmitJobsRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn named(result: Result<(), Error>) {
    if let Err(Error::Invalid(e)) = &result {
        assert!(!e.field.is_empty() && !e.reason.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let longest = 16 + 64 * data.first().copied().unwrap_or(0) as u32;
    let Ok(batch) = SubmitJobsRequest::decode(data) else {
        return;
    };
    for job in batch.jobs {
        let Some(request) = job.request else {
            continue;
        };
        if let Some(target) = &request.target {
            named(targets::sources(target).map(|_| ()));
        }
        let params = request.params.clone().unwrap_or_default();
        let upload = matches!(request.target, Some(Target::Mask(_)));
        named(validate::settings(&params, upload, longest).map(|_| ()));
        let regions = params.region_overrides.len() + 1;
        let _ = regions::unused_overrides(&params, regions);
    }
});
