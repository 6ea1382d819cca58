//! One Inpaint request, stage by stage: decode, find regions, prepare masks
//! and crops, repaint, composite, encode. Each stage is a function of its
//! own module, over a request `validate` has checked.

mod base;
mod composite;
mod engine_names;
mod engines;
mod find;
mod prepare;
mod progress;
mod repaint;
mod respond;
mod timer;
mod upload;
pub mod validate;

use inpaint_proto::v1::{InpaintResponse, Region};

use crate::error::Error;
use repaint::Plan;
use respond::Said;
use timer::Timer;

pub use base::Pipeline;
pub use engine_names::EngineNames;
pub(crate) use find::Regions;
pub use progress::{Progress, Silent, Stage};
pub use validate::Checked;

impl Pipeline {
    #[tracing::instrument(
        name = "inpaint",
        skip_all,
        fields(engine = req.params.engine.as_str(), target = crate::targets::describe(&req.target), image_bytes = req.image.len())
    )]
    pub async fn inpaint(
        &self,
        req: Checked,
        progress: &impl Progress,
    ) -> Result<InpaintResponse, Error> {
        self.check_engines(&req.engines()).await?;
        let mut timer = Timer::new();
        let decoding = self.decoding(&req);
        let upload = upload::decode(&req, decoding)?;
        let (image, carried) = (upload.image, upload.carried);
        let mut notes = upload.notes;
        timer.lap("decode");

        progress.report(Stage::Segmenting).await?;
        let found = self.find_regions(&req.target, &image, decoding).await?;
        timer.lap("segment");
        let (masks, regions) = match found {
            Regions::Found { masks, regions } => (masks, regions),
            Regions::None { note } => {
                notes.push(note);
                let said = said(notes, vec![], timer);
                return respond::unchanged(req, &image, carried.carried(), said);
            }
        };

        let prepared = self
            .prepare(&req, &image, upload.sketch, masks, &mut notes)
            .await?;
        timer.lap("prepare");
        let Some(mut prepared) = prepared else {
            notes.push("the mask is empty after processing: nothing to repaint".to_string());
            let said = said(notes, regions, timer);
            return respond::unchanged(req, &image, carried.carried(), said);
        };

        let mut plan = Plan::take(&mut prepared.crops, &req)?;
        let total = plan.crops.len() as u32;
        progress
            .report(Stage::MasksReady { regions: total })
            .await?;
        progress
            .report(Stage::Inpainting { done: 0, total })
            .await?;
        let painted = self
            .repaint(&req, &image, &plan, prepared.crops, progress)
            .await?;
        timer.lap("inpaint");

        progress.report(Stage::Compositing).await?;
        let result = self
            .composite(&req, image, &mut plan, painted.images)
            .await?;
        timer.lap("composite");

        let encoded = respond::repainted(&req, &result, carried.carried(), prepared.mask)?;
        timer.lap("encode");
        for (crop, report) in plan.crops.iter_mut().zip(painted.reports) {
            crop.sd = report;
        }
        let said = Said {
            crops: plan.crops,
            engine: painted.engine,
            ..said(notes, regions, timer)
        };
        Ok(respond::response(&result, encoded, said))
    }
}

fn said(notes: Vec<String>, regions: Vec<Region>, timer: Timer) -> Said {
    Said {
        notes,
        regions,
        crops: vec![],
        timings: timer.timings,
        engine: String::new(),
    }
}
